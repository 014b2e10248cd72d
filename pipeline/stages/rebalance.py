"""Rebalance stage: choose kept samples to match a target domain mix, harder questions first.

Pure function of a frame of kept samples, so it is tested without a database.
best_effort: the total is min(max_samples, all kept); each domain gets its share of it or
  all it has, and the gap is reported as a shortfall (the mix skews only by what is missing).
strict: the total shrinks until every domain can meet its exact share.
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
    """Largest-remainder rounding, so quotas sum to the total; with `cap`, leftover units go
    only to domains that still have samples (best_effort must not waste them)."""
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
    wanted_fracs = {d: f for d, f in cfg.targets.items() if f > 0}
    if cfg.mode == "strict":
        total = min([cfg.max_samples] + [math.floor(available[d] / f) for d, f in wanted_fracs.items()])
    else:
        total = min(cfg.max_samples, sum(available.values()))
    quota = _quotas(wanted_fracs, total, available, cap=cfg.mode == "best_effort")
    chosen = ranked.filter(
        pl.col("rank") < pl.col("domain").replace_strict(quota, default=0, return_dtype=pl.Int64)
    ).with_columns(
        reason=pl.format("{}: rank {} by difficulty {} (quota {})", "domain", pl.col("rank") + 1,
                         pl.col("difficulty").round(3), pl.col("domain").replace_strict(quota, default=0))
    ).select("sample_id", "domain", "difficulty", "reason")
    shortfall = []
    for d, f in wanted_fracs.items():
        got = min(quota[d], available[d])
        missing = quota[d] - got
        if missing <= 0:
            continue
        tried = (questions_tried or {}).get(d, 0)
        per_question = available[d] / tried if tried else 0.0
        estimate = math.ceil(missing / per_question) if per_question > 0 else None
        shortfall.append(ShortfallRow(domain=d, target_fraction=f, wanted=quota[d], selected=got,
                                      missing=missing, questions_to_synthesize=estimate))
    return Selection(chosen, shortfall)
