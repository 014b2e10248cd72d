"""Ingest stage: read the pools, store questions and quarantined rows, choose this run's questions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline.hashing import stable_hash
from pipeline.pools import read_pool
from pipeline.stage import StageContext, StageReport
from pipeline.store import Store, now
from schemas.config import CurateConfig


@dataclass
class IngestReport:
    read: int
    new_questions: int
    quarantined: int
    quarantine_messages: list[str]
    unreadable: list[str]  # one message per pool file that could not be read (also in quarantine)
    notes: list[str]  # nothing lost, worth saying: an empty file, a JSON array in a .jsonl
    pool: pl.DataFrame = field(repr=False)  # question_id, domain, weight (its pool's) of every question read


def ingest(store: Store, config: CurateConfig, run_id: str, base_dir: Path | None = None) -> IngestReport:
    questions, quarantine, weights, unreadable, notes, messages = [], [], {}, [], [], []
    for n, pool in enumerate(config.pools):
        result = read_pool(pool, base_dir)
        questions.extend(result.questions)
        quarantine.extend(result.quarantine)
        unreadable.extend([result.error] if result.error else [])
        notes.extend(result.notes)
        # An unreadable file's own row (the last) is said once, as its error, not again as a row.
        messages.extend(_row_message(r) for r in result.quarantine[:-1 if result.error else None])
        for q in result.questions:  # the first pool that reads a question gives its weight
            weights.setdefault(q.question_id, (n, pool.weight))
    created = now()
    q_frame = pl.DataFrame(
        [q.model_dump() | {"first_run_id": run_id} for q in questions],
        schema_overrides={"tests": pl.List(pl.String), "subdomain": pl.String,
                          "reference_answer": pl.String, "answer_type": pl.String, "level": pl.Float64},
    ) if questions else pl.DataFrame(schema={"question_id": pl.String, "domain": pl.String})
    q_frame = q_frame.unique("question_id", keep="first", maintain_order=True)
    x_frame = pl.DataFrame(
        [r.model_dump() | {"run_id": run_id, "created_at": created} for r in quarantine],
        schema_overrides={"line": pl.Int32, "field": pl.String, "raw": pl.String},
    ) if quarantine else pl.DataFrame()
    before = store.count("questions")
    store.insert_many({"questions": q_frame, "quarantine": x_frame})
    return IngestReport(
        read=len(questions), new_questions=store.count("questions") - before,
        quarantined=len(quarantine), quarantine_messages=messages, unreadable=unreadable, notes=notes,
        pool=q_frame.select("question_id", "domain").with_columns(
            pool_index=pl.col("question_id").replace_strict({k: v[0] for k, v in weights.items()},
                                                            default=None, return_dtype=pl.Int32),
            weight=pl.col("question_id").replace_strict({k: v[1] for k, v in weights.items()},
                                                        default=None, return_dtype=pl.Float64)),
    )


def _row_message(row) -> str:
    named = row.field is None or repr(row.field) in row.error
    return f"{row.pool_path}:{row.line or '-'}: {'' if named else f'field {row.field!r}: '}{row.error}"


def select_questions(pool: pl.DataFrame, limit: int | None, seed: int) -> list[str]:
    """This run's questions: the whole pool, or `limit` of them spread evenly over domains.

    Within a domain the order is a seeded hash of the question id, so the same config picks
    the same questions on every run (a re-run then finds all of its samples already made).
    With pool weights (columns pool_index, weight; see PoolConfig.weight) a domain's picks are
    dealt to its pools by weight; weight 0 pools are never picked.
    """
    if pool.is_empty():
        return []
    ordered = pool.with_columns(
        pl.col("question_id").map_elements(lambda q: stable_hash(q, seed), return_dtype=pl.String).alias("order")
    ).sort(["domain", "order"])
    if "weight" in ordered.columns and ordered["weight"].is_not_null().any():
        ordered = _weighted_order(ordered)
    if limit is None:
        return ordered["question_id"].to_list()
    sizes = dict(ordered.group_by("domain", maintain_order=True).len().iter_rows())
    quota = {d: 0 for d in sizes}
    remaining = min(limit, ordered.height)
    # Round-robin one question at a time so small domains pass their unused share on.
    while remaining:
        for d in quota:
            if remaining and quota[d] < sizes[d]:
                quota[d] += 1
                remaining -= 1
    return [
        qid for d in quota for qid in ordered.filter(pl.col("domain") == d)["question_id"].head(quota[d]).to_list()
    ]


def _weighted_order(ordered: pl.DataFrame) -> pl.DataFrame:
    """Each weighted domain's questions re-ordered so that any prefix deals its picks to the pools
    by weight (the pool furthest below its share goes next); weight-0 pools are left out. Domains
    where no pool sets a weight keep the plain order."""
    parts = []
    for (domain,), rows in ordered.group_by("domain", maintain_order=True):
        if rows["weight"].is_null().all():
            parts.append(rows)
            continue
        rows = rows.with_columns(pl.col("weight").fill_null(1.0))
        queues = {int(k): g["question_id"].to_list() for (k,), g in rows.group_by("pool_index", maintain_order=True)}
        weight = {k: float(rows.filter(pl.col("pool_index") == k)["weight"][0]) for k in queues}
        queues = {k: q for k, q in queues.items() if weight[k] > 0}
        total, taken, picked = sum(weight[k] for k in queues), dict.fromkeys(queues, 0), []
        while queues:
            n = len(picked) + 1
            k = min(queues, key=lambda k: (taken[k] - n * weight[k] / total, k))
            picked.append(queues[k][taken[k]])
            taken[k] += 1
            if taken[k] == len(queues[k]):
                total -= weight[k]
                del queues[k]
        order = {q: i for i, q in enumerate(picked)}
        parts.append(rows.filter(pl.col("question_id").is_in(picked)).with_columns(
            order=pl.col("question_id").replace_strict(order, return_dtype=pl.Int64)).sort("order")
            .with_columns(pl.col("order").cast(pl.String)))
    return pl.concat(parts, how="vertical_relaxed")


def run(ctx: StageContext) -> StageReport:
    """Read the pools; the pool read (ids, domains, weights) is kept for the screen stage."""
    report = ingest(ctx.store, ctx.config, ctx.run_id)
    ctx.run.built["pool"] = report.pool
    notes = [f"[error] cannot read {m}" for m in report.unreadable]  # every one: a whole file is missing
    notes += [f"[note] {m}" for m in report.notes]
    notes += [f"[quarantine] {m}" for m in report.quarantine_messages[:10]]
    if len(report.quarantine_messages) > 10:
        notes.append(f"[quarantine] ... {len(report.quarantine_messages) - 10} more (SELECT * FROM quarantine)")
    unreadable = len(report.unreadable)
    notes.append(f"{report.read} questions read ({report.new_questions} new, {report.quarantined} quarantined"
                 + (f", {unreadable} pool file{'s' * (unreadable > 1)} unreadable" if unreadable else "") + ")")
    return StageReport({"read": report.read, "new": report.new_questions, "quarantined": report.quarantined,
                        "unreadable_pools": len(report.unreadable)}, notes)
