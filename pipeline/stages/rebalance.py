"""Rebalance stage: choose kept samples to match a target domain mix, harder questions first.

Pure function of a frame of kept samples, so it is tested without a database.
best_effort: aim at min(max_samples, all kept); each domain gets its share of that or all it
  has (the mix skews only by what is missing).
strict: the total shrinks until every domain can meet its exact share.
In both modes the shortfall says, per domain, how many more kept samples the exact mix at the
best_effort size would need, and roughly how many more questions to synthesize for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from pipeline.hashing import stable_hash
from schemas.config import RebalanceConfig
from schemas.shard import ShortfallRow


@dataclass
class Selection:
    chosen: pl.DataFrame  # sample_id, domain, difficulty, reason
    shortfall: list[ShortfallRow]


def _quotas(fracs: dict[str, float], total: int, available: dict[str, int], cap: bool) -> dict[str, int]:
    """Largest-remainder rounding: floor of each share, then at most one leftover unit per domain
    by largest remainder, so quotas sum to the total. With `cap`, a leftover unit skips domains
    that have no samples to give (best_effort must not waste it), so the sum can fall short of
    the total; the gap is what the shortfall reports."""
    raw = {d: f * total for d, f in fracs.items()}
    quota = {d: math.floor(r) for d, r in raw.items()}
    left = total - sum(quota.values())
    for d in sorted(fracs, key=lambda d: (raw[d] - quota[d], fracs[d], d), reverse=True):
        if left == 0:
            break
        if cap and quota[d] >= available[d]:
            continue
        quota[d] += 1
        left -= 1
    return quota


def rebalance(kept: pl.DataFrame, cfg: RebalanceConfig, questions_tried: dict[str, int] | None = None) -> Selection:
    """`kept`: sample_id, question_id, domain, difficulty (nullable). `questions_tried`: questions
    synthesized per domain, to estimate how many more are needed to close a shortfall."""
    kept = kept.filter(pl.col("domain").is_in(list(cfg.targets)))
    ranked = (
        kept.with_columns(
            tiebreak=pl.col("sample_id").map_elements(lambda s: stable_hash(s, cfg.seed), return_dtype=pl.String),
            difficulty=pl.col("difficulty").fill_null(0.0),
        )
        .sort(["domain", "difficulty", "tiebreak"], descending=[False, True, False])
        .with_columns(per_question=pl.int_range(pl.len()).over("question_id"))
        .filter(pl.col("per_question") < cfg.max_per_question)
        .with_columns(rank=pl.int_range(pl.len()).over("domain"))
    )
    available = {d: int(ranked.filter(pl.col("domain") == d).height) for d in cfg.targets}
    fracs = {d: f for d, f in cfg.targets.items() if f > 0}
    # The size both modes aim for, and the exact mix at that size (what a shortfall is measured against).
    aim = min(cfg.max_samples, sum(available.values()))
    wanted = _quotas(fracs, aim, available, cap=False)
    if cfg.mode == "strict":
        total = min([aim] + [math.floor(available[d] / f) for d, f in fracs.items()])
        quota = _quotas(fracs, total, available, cap=False)
    else:
        quota = {d: min(q, available[d]) for d, q in _quotas(fracs, aim, available, cap=True).items()}
    chosen = ranked.filter(
        pl.col("rank") < pl.col("domain").replace_strict(quota, default=0, return_dtype=pl.Int64)
    ).with_columns(
        reason=pl.format("{}: rank {} by difficulty {} (quota {})", "domain", pl.col("rank") + 1,
                         pl.col("difficulty").round(3), pl.col("domain").replace_strict(quota, default=0))
    ).select("sample_id", "domain", "difficulty", "reason")
    shortfall = []
    for d, f in fracs.items():
        missing = wanted[d] - available[d]
        if missing <= 0:
            continue
        tried = (questions_tried or {}).get(d, 0)
        per_question = available[d] / tried if tried else 0.0
        estimate = math.ceil(missing / per_question) if per_question > 0 else None
        shortfall.append(ShortfallRow(domain=d, target_fraction=f, wanted=wanted[d], selected=quota[d],
                                      missing=missing, questions_to_synthesize=estimate))
    return Selection(chosen, shortfall)
