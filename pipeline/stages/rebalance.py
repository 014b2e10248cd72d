"""Rebalance stage: choose kept samples to match a target domain mix, harder questions first.

Pure function of a frame of kept samples, so it is tested without a database. Within a domain
samples are taken in preference order (hardest first, a seeded power-law draw over difficulty
rank, or a pass-rate band first), at most max_per_question per question; optional mixes by
difficulty band and by answer style split each domain's quota.
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


def difficulty_band(difficulty: pl.Expr, edges: tuple[float, float]) -> pl.Expr:
    """easy / medium / hard by difficulty; unknown where no difficulty was scored."""
    return (pl.when(difficulty.is_null()).then(pl.lit("unknown"))
            .when(difficulty < edges[0]).then(pl.lit("easy"))
            .when(difficulty < edges[1]).then(pl.lit("medium"))
            .otherwise(pl.lit("hard")))


def _uniform(sample_id: str, seed: int) -> float:
    """A seeded uniform in (0, 1) per sample, stable across processes and library versions."""
    return (int(stable_hash(sample_id, seed, length=13), 16) + 0.5) / 16**13


def _preference(kept: pl.DataFrame, cfg: RebalanceConfig) -> pl.DataFrame:
    """Adds `pref` (0 = taken first within its domain) following cfg.prefer."""
    frame = kept.with_columns(
        tiebreak=pl.col("sample_id").map_elements(lambda s: stable_hash(s, cfg.seed), return_dtype=pl.String),
        difficulty=pl.col("difficulty").fill_null(0.0),
    )
    if cfg.prefer == "power_law":
        # Efraimidis-Spirakis weighted order: key = log(u) / w, largest first, w = rank^-alpha.
        frame = frame.sort(["domain", "difficulty", "tiebreak"], descending=[False, True, False]).with_columns(
            u=pl.col("sample_id").map_elements(lambda s: _uniform(s, cfg.seed), return_dtype=pl.Float64),
            w=(pl.int_range(1, pl.len() + 1).over("domain").cast(pl.Float64) ** -cfg.power_law_alpha),
        ).with_columns(key=pl.col("u").log() / pl.col("w"))
        order, descending = ["domain", "key", "tiebreak"], [False, True, False]
    elif cfg.prefer == "pass_rate_band":
        lo, hi = 1 - cfg.pass_rate_band[1], 1 - cfg.pass_rate_band[0]  # as difficulty
        # The band is about pass rates: read them where given (difficulty may be a combined rank).
        d = pl.col("pass_difficulty").fill_null(pl.col("difficulty")) if "pass_difficulty" in frame.columns \
            else pl.col("difficulty")
        frame = frame.with_columns(distance=pl.when(d < lo).then(lo - d).when(d > hi).then(d - hi).otherwise(0.0))
        order, descending = ["domain", "distance", "tiebreak"], [False, False, False]
    else:
        order, descending = ["domain", "difficulty", "tiebreak"], [False, True, False]
    return (frame.sort(order, descending=descending)
            .with_columns(per_question=pl.int_range(pl.len()).over("question_id"))
            .filter(pl.col("per_question") < cfg.max_per_question)
            .with_columns(pref=pl.int_range(pl.len()).over("domain")))


def _take_with_mixes(ranked: pl.DataFrame, quota: dict[str, int], cfg: RebalanceConfig) -> pl.DataFrame:
    """Greedy per domain in preference order: a sample is taken while its band's and style's
    share of the quota are not yet full; leftover slots go to the next preferred samples."""
    keys = [k for k, mix in (("band", cfg.difficulty_targets), ("style", cfg.style_targets)) if mix]
    mixes = {"band": cfg.difficulty_targets, "style": cfg.style_targets}
    taken = []
    for domain, group in ranked.group_by("domain", maintain_order=True):
        q = quota.get(domain[0], 0)
        caps = {k: _quotas(mixes[k], q, {n: q for n in mixes[k]}, cap=False) for k in keys}
        used = {k: dict.fromkeys(caps[k], 0) for k in keys}
        rows = group.select(["sample_id", *keys]).rows()
        chosen, fallback = [], []
        for sid, *values in rows:
            if len(chosen) == q:
                break
            if all(used[k].get(v, 0) < caps[k].get(v, 0) for k, v in zip(keys, values)):
                chosen.append((sid, "in mix"))
                for k, v in zip(keys, values):
                    used[k][v] += 1
            else:
                fallback.append(sid)
        chosen += [(sid, "mix part short, next preferred") for sid in fallback[:q - len(chosen)]]
        taken += [{"sample_id": sid, "mix": note} for sid, note in chosen]
    picked = pl.DataFrame(taken, schema={"sample_id": pl.String, "mix": pl.String})
    return ranked.join(picked, on="sample_id", how="inner").sort(["domain", "pref"])


def rebalance(kept: pl.DataFrame, cfg: RebalanceConfig, questions_tried: dict[str, int] | None = None) -> Selection:
    """`kept`: sample_id, question_id, domain, difficulty (nullable), and requested_format when
    cfg.style_targets is set (pass_difficulty, 1 - pass rate, optional: pass_rate_band reads it). `questions_tried`: questions synthesized per domain, to estimate
    how many more are needed to close a shortfall."""
    kept = kept.filter(pl.col("domain").is_in(list(cfg.targets)))
    if cfg.style_targets:
        kept = kept.with_columns(style=pl.col("requested_format"))
    ranked = _preference(kept.with_columns(band=difficulty_band(pl.col("difficulty"), cfg.band_edges)), cfg)
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
    if cfg.difficulty_targets or cfg.style_targets:
        chosen = _take_with_mixes(ranked, quota, cfg).with_columns(rank=pl.int_range(pl.len()).over("domain"))
    else:
        chosen = ranked.rename({"pref": "rank"}).filter(
            pl.col("rank") < pl.col("domain").replace_strict(quota, default=0, return_dtype=pl.Int64))
    how = {"hardest": "by", "power_law": "in a power-law draw,", "pass_rate_band": "by pass-rate band,"}[cfg.prefer]
    reason = pl.format("{}: rank {} " + how + " difficulty {} (quota {})", "domain", pl.col("rank") + 1,
                       pl.col("difficulty").round(3), pl.col("domain").replace_strict(quota, default=0))
    if cfg.difficulty_targets or cfg.style_targets:
        reason = pl.format("{}, band {}, {}", reason, "band", "mix")
    chosen = chosen.with_columns(reason=reason).select("sample_id", "domain", "difficulty", "reason")
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
