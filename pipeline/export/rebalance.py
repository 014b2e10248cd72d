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

from pipeline.store import Store
from schemas.config import RebalanceConfig
from schemas.shard import ShortfallRow


@dataclass
class Selection:
    chosen: pl.DataFrame | None  # sample_id, domain, difficulty, reason (rebalance(); None from rebalance_store)
    shortfall: list[ShortfallRow]
    quota: dict[str, int]


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


def band_sql(difficulty: str, edges: tuple[float, float]) -> str:
    """difficulty_band as SQL (the ranking runs in DuckDB)."""
    return (f"CASE WHEN {difficulty} IS NULL THEN 'unknown' WHEN {difficulty} < {float(edges[0])!r} THEN 'easy' "
            f"WHEN {difficulty} < {float(edges[1])!r} THEN 'medium' ELSE 'hard' END")


def _ranking_sql(cfg: RebalanceConfig, kept: str, has_pass: bool, has_style: bool) -> str:
    """Kept samples in the target domains with `pref` (0 = taken first within its domain) following
    cfg.prefer, at most max_per_question per question. Runs in DuckDB, which spills, so memory does
    not grow with the store (polars held every kept id: bench/scale.py)."""
    # A seeded tiebreak and a seeded uniform in (0, 1) per sample, both from sha256 of id + seed.
    tiebreak = f"sha256(sample_id || ':' || {int(cfg.seed)})"
    if cfg.prefer == "power_law":
        # Efraimidis-Spirakis weighted order: key = ln(u) / w, largest first, w = rank^-alpha.
        rank = "row_number() OVER (PARTITION BY domain ORDER BY d DESC, tiebreak)"
        uniform = "((('0x' || substr(tiebreak, 1, 13))::UBIGINT + 0.5) / 4503599627370496.0)"  # 16^13
        key = f"ln({uniform}) / pow({rank}, -{float(cfg.power_law_alpha)!r})"
        order = "key DESC, tiebreak"
    elif cfg.prefer == "pass_rate_band":
        lo, hi = 1 - cfg.pass_rate_band[1], 1 - cfg.pass_rate_band[0]  # as difficulty
        # The band is about pass rates: read them where given (difficulty may be a combined rank).
        p = "coalesce(pass_difficulty, difficulty)" if has_pass else "difficulty"
        key = f"CASE WHEN {p} < {lo!r} THEN {lo!r} - {p} WHEN {p} > {hi!r} THEN {p} - {hi!r} ELSE 0.0 END"
        order = "key, tiebreak"
    else:
        key, order = "d", "d DESC, tiebreak"
    style = "requested_format" if has_style else "NULL::VARCHAR"
    return f"""
        WITH base AS (
            SELECT sample_id, question_id, domain, difficulty, coalesce(difficulty, 0.0) AS d,
                   {"pass_difficulty" if has_pass else "NULL::DOUBLE AS pass_difficulty"},
                   {style} AS style, {band_sql("difficulty", cfg.band_edges)} AS band, {tiebreak} AS tiebreak
            FROM {kept} WHERE domain IN (SELECT domain FROM _targets)
        ), keyed AS (SELECT *, {key} AS key FROM base),
        capped AS (
            SELECT * FROM keyed
            QUALIFY row_number() OVER (PARTITION BY question_id ORDER BY {order}) <= {int(cfg.max_per_question)}
        )
        SELECT sample_id, domain, d AS difficulty, style, band,
               row_number() OVER (PARTITION BY domain ORDER BY {order}) - 1 AS pref
        FROM capped"""


_PAGE = 50_000  # ranked rows read at a time by the mix-aware greedy pass


def _take_with_mixes(store: Store, quota: dict[str, int], cfg: RebalanceConfig) -> pl.DataFrame:
    """sample_id, mix note of the picks (ids only: O(export) memory). Greedy per domain in preference order: a sample is taken while its band's and style's
    share of the quota are not yet full; leftover slots go to the next preferred samples. Reads
    the ranking a page at a time and stops once the quota is filled."""
    keys = [k for k, mix in (("band", cfg.difficulty_targets), ("style", cfg.style_targets)) if mix]
    mixes = {"band": cfg.difficulty_targets, "style": cfg.style_targets}
    taken = []
    for domain, q in sorted(quota.items()):
        caps = {k: _quotas(mixes[k], q, {n: q for n in mixes[k]}, cap=False) for k in keys}
        used = {k: dict.fromkeys(caps[k], 0) for k in keys}
        chosen, fallback, start = [], [], 0
        while len(chosen) < q:
            page = store.frame(f"SELECT sample_id, {', '.join(keys)} FROM _ranked WHERE domain = ? AND pref >= ? "
                               f"AND pref < ? ORDER BY pref", [domain, start, start + _PAGE]).rows()
            if not page:
                break
            start += _PAGE
            for sid, *values in page:
                if len(chosen) == q:
                    break
                if all(used[k].get(v, 0) < caps[k].get(v, 0) for k, v in zip(keys, values)):
                    chosen.append((sid, "in mix"))
                    for k, v in zip(keys, values):
                        used[k][v] += 1
                elif len(fallback) < q:
                    fallback.append(sid)
        chosen += [(sid, "mix part short, next preferred") for sid in fallback[:q - len(chosen)]]
        taken += [{"sample_id": sid, "mix": note} for sid, note in chosen]
    return pl.DataFrame(taken, schema={"sample_id": pl.String, "mix": pl.String})


def rebalance(kept: pl.DataFrame, cfg: RebalanceConfig, questions_tried: dict[str, int] | None = None) -> Selection:
    """rebalance_store over a frame of kept samples (an in-memory DuckDB holds it); the chosen
    rows come back as a frame in shard order (domain, rank)."""
    with Store(":memory:") as store:
        store.con.register("_kept_frame", kept.to_arrow())
        selection = rebalance_store(store, "_kept_frame", cfg, questions_tried)
        selection.chosen = store.frame(f"SELECT {CHOSEN_COLUMNS} FROM _chosen ORDER BY domain, rank")
        return selection


CHOSEN_COLUMNS = "sample_id, domain, difficulty, reason"


def rebalance_store(store: Store, kept: str, cfg: RebalanceConfig,
                    questions_tried: dict[str, int] | None = None) -> Selection:
    """Writes the choice to the temp table `_chosen` (sample_id, domain, difficulty, reason, rank)
    and returns the shortfall; the ranking and the cut run in DuckDB, so memory stays flat in the
    store's size (bench/scale.py). `kept`: a table or view in the store with sample_id,
    question_id, domain, difficulty (nullable), requested_format when cfg.style_targets is set,
    and optionally pass_difficulty (1 - pass rate; pass_rate_band reads it). `questions_tried`:
    questions synthesized per domain, to estimate how many more are needed to close a shortfall."""
    columns = set(store.frame(f"SELECT * FROM {kept} LIMIT 0").columns)
    targets = pl.DataFrame({"domain": list(cfg.targets)}, schema={"domain": pl.String})
    store.con.register("_targets", targets.to_arrow())
    store.con.execute("CREATE OR REPLACE TEMP TABLE _ranked AS " + _ranking_sql(
        cfg, kept, has_pass="pass_difficulty" in columns, has_style=bool(cfg.style_targets)))
    store.con.unregister("_targets")
    available = dict.fromkeys(cfg.targets, 0) | dict(
        store.frame("SELECT domain, count(*) FROM _ranked GROUP BY domain").rows())
    fracs = {d: f for d, f in cfg.targets.items() if f > 0}
    # The size both modes aim for, and the exact mix at that size (what a shortfall is measured against).
    aim = min(cfg.max_samples, sum(available.values()))
    wanted = _quotas(fracs, aim, available, cap=False)
    if cfg.mode == "strict":
        total = min([aim] + [math.floor(available[d] / f) for d, f in fracs.items()])
        quota = _quotas(fracs, total, available, cap=False)
    else:
        quota = {d: min(q, available[d]) for d, q in _quotas(fracs, aim, available, cap=True).items()}
    store.con.register("_quotas", pl.DataFrame({"domain": list(quota), "q": list(quota.values())},
                                               schema={"domain": pl.String, "q": pl.Int64}).to_arrow())
    how = {"hardest": "by", "power_law": "in a power-law draw,", "pass_rate_band": "by pass-rate band,"}[cfg.prefer]
    reason = f"format('{{}}: rank {{}} {how} difficulty {{}} (quota {{}})', domain, rank + 1, round(difficulty, 3), q)"
    if cfg.difficulty_targets or cfg.style_targets:
        store.con.register("_picked", _take_with_mixes(store, quota, cfg).to_arrow())
        picked = """SELECT r.*, p.mix, row_number() OVER (PARTITION BY r.domain ORDER BY r.pref) - 1 AS rank
                    FROM _ranked r JOIN _picked p USING (sample_id)"""
        reason = f"format('{{}}, band {{}}, {{}}', {reason}, band, mix)"
    else:
        picked = "SELECT *, pref AS rank FROM _ranked"
    store.con.execute(f"""CREATE OR REPLACE TEMP TABLE _chosen AS
        SELECT sample_id, domain, difficulty, {reason} AS reason, rank
        FROM ({picked}) JOIN _quotas USING (domain) WHERE rank < q""")
    for name in ("_quotas", "_picked"):
        store.con.unregister(name)
    store.con.execute("DROP TABLE _ranked")
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
    return Selection(None, shortfall, quota)
