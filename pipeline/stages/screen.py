"""Screen stage: question-level rules before any sample is made.

decontam_ngram: a question overlapping a benchmark item is not used (filters/screening/decontam.py).
  Checked once per question and benchmark set: a verdict made against another set of
  benchmarks (its fingerprint is in details) is redone.
dedup: of each cluster of exact or near duplicates only the representative is used
  (filters/screening/dedup.py); the first question in pool order represents its cluster. Clusters
  depend on the whole pool, so dedup runs over all of it, and is skipped when the pool and
  parameters are the ones it last ran on.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass

import polars as pl

from filters.screening.decontam import NgramIndex
from filters.screening.decontam import question_verdict as decontam_row
from filters.screening.dedup import DedupItem, DedupParams, deduplicate
from filters.screening.dedup import question_verdict as dedup_row
from pipeline.hashing import stable_hash
from pipeline.stage import StageContext, StageReport
from pipeline.stages.ingest import select_questions
from pipeline.store import Store, now
from schemas import rows
from schemas.config import CurateConfig

QV_SCHEMA = rows.QUESTION_VERDICT


@dataclass
class ScreenReport:
    decontam_checked: int
    contaminated: int
    dedup_ran: bool
    duplicates: int


def _frame(rows: list[dict], run_id: str) -> pl.DataFrame:
    created = now()
    return pl.DataFrame([r | {"details": json.dumps(r["details"]), "run_id": run_id, "created_at": created}
                         for r in rows], schema=QV_SCHEMA)


def screen_questions(store: Store, config: CurateConfig, run_id: str, pool: pl.DataFrame, index: NgramIndex) -> ScreenReport:
    ids = pool.select("question_id")
    todo = store.frame(f"""
        SELECT q.question_id, q.text FROM questions q
        WHERE q.question_id IN (SELECT question_id FROM ids) AND NOT EXISTS (
            SELECT 1 FROM question_verdicts v WHERE v.question_id = q.question_id AND v.rule = '{index.rule}'
              AND v.rule_version = {index.version}
              AND json_extract_string(v.details, '$.benchmarks') = '{index.fingerprint}')
        ORDER BY q.question_id""", ids=ids)
    rows = [decontam_row(index.match(text), index) | {"question_id": qid} for qid, text in todo.iter_rows()]
    store.replace("question_verdicts", _frame(rows, run_id))
    report = ScreenReport(len(rows), sum(not r["passed"] for r in rows), False, 0)
    if config.dedup.enabled:
        report.dedup_ran, report.duplicates = _dedup(store, config, run_id, pool)
    return report


def _dedup(store: Store, config: CurateConfig, run_id: str, pool: pl.DataFrame) -> tuple[bool, int]:
    params = DedupParams()
    questions = store.frame(
        "SELECT p.question_id, q.text, q.reference_answer, q.source FROM pool p JOIN questions q USING (question_id)",
        pool=pool.with_row_index("position").select("position", "question_id"),
    ) if not pool.is_empty() else pl.DataFrame()
    fingerprint = stable_hash("dedup", pool["question_id"].to_list(), params.describe(),
                              config.dedup.model_dump(), length=16)
    done = store.scalar("""SELECT count(*) FROM question_verdicts
                           WHERE stage = 'dedup' AND json_extract_string(details, '$.pool') = ?""", [fingerprint])
    if done == pool.height:
        return False, store.scalar("""SELECT count(*) FROM question_verdicts WHERE stage = 'dedup'
                                      AND json_extract_string(details, '$.pool') = ? AND NOT passed""", [fingerprint])
    order = {qid: i for i, qid in enumerate(pool["question_id"].to_list())}
    rows = sorted(questions.iter_rows(named=True), key=lambda r: order[r["question_id"]])
    exact_only = config.dedup.exact_only_sources
    items = [DedupItem(r["question_id"], r["text"], r["reference_answer"],
                       near=config.dedup.near and not any(fnmatch.fnmatch(r["source"], p) for p in exact_only))
             for r in rows]
    verdicts = deduplicate(items, params)
    out = []
    for v in verdicts:
        row = dedup_row(v, params) | {"question_id": v.item_id}
        row["details"] = row["details"] | {"pool": fingerprint}
        out.append(row)
    store.replace("question_verdicts", _frame(out, run_id))
    return True, sum(not r["passed"] for r in out)


def usable(store: Store, pool: pl.DataFrame) -> pl.DataFrame:
    """The pool without questions a screening rule rejected."""
    return store.frame("""SELECT p.* EXCLUDE (position) FROM pool p JOIN question_status s USING (question_id)
                          WHERE s.usable ORDER BY p.position""", pool=pool.with_row_index("position"))


def run(ctx: StageContext) -> StageReport:
    """Screen the pool the ingest stage read, then choose the run's questions from what is usable."""
    pool = ctx.run.built.get("pool")
    if pool is None:
        raise RuntimeError("the screen stage needs the pool the ingest stage read in this run")
    report = screen_questions(ctx.store, ctx.config, ctx.run_id, pool, ctx.benchmark_index)
    kept = usable(ctx.store, pool)
    ctx.run.question_ids = select_questions(kept, ctx.config.limit, ctx.config.selection_seed)
    return StageReport(vars(report), [f"{pool.height - kept.height} questions set aside by decontamination or dedup; "
                                      f"{len(ctx.run.question_ids)} selected for this run"])
