"""Verify stage: correctness against references, in a process pool.

Math-Verify bounds its parsing with signal.alarm, which only works in a main thread; Prefect
runs tasks in worker threads, so checks run in spawned worker processes (also using both cores).
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import polars as pl

from filters.answer_match import VERIFIABLE_TYPES, AnswerMatch, check_rows
from pipeline.progress import NoProgress, Progress
from pipeline.stages.verdicts import unjudged, verdict_frame
from pipeline.store import Store

_VERIFIABLE = f"answer_type IN {VERIFIABLE_TYPES} AND reference_answer IS NOT NULL"
_CHUNK = 2000
_TASK_ROWS = 64


@dataclass
class VerifyReport:
    checked: int
    correct: int


def run_verify(store: Store, run_id: str, workers: int = 2, progress: Progress | None = None) -> VerifyReport:
    progress = progress or NoProgress()
    rule = AnswerMatch()
    checked = correct = 0
    progress.start("verify: answer_match", 0)
    pool = None
    try:
        while True:
            batch = unjudged(store, rule.name, rule.version, where=_VERIFIABLE, limit=_CHUNK)
            if batch.is_empty():
                break
            if pool is None:
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
            rows = batch.select(AnswerMatch.needs).to_dicts()
            parts = [rows[i:i + _TASK_ROWS] for i in range(0, len(rows), _TASK_ROWS)]
            results = []
            for part in pool.map(check_rows, parts):
                results.extend(part)
                progress.advance(len(part))
            frame = pl.DataFrame(results, schema={"passed": pl.Boolean, "score": pl.Float64, "reason": pl.String},
                                 orient="row")
            store.insert("verdicts", verdict_frame(batch["sample_id"].to_list(), frame, stage="verify",
                                                   rule=rule.name, version=rule.version, run_id=run_id))
            checked += batch.height
            correct += int(frame["passed"].sum())
    finally:
        if pool is not None:
            pool.shutdown()
        progress.done()
    return VerifyReport(checked, correct)
