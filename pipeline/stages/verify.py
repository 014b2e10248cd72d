"""Verify stage: correctness against references.

answer_match: Math-Verify bounds its parsing with signal.alarm, which only works in a main
  thread; Prefect runs tasks in worker threads, so checks run in spawned worker processes
  (also using both cores).
code_tests: the program in a code answer runs against the question's tests in the sandbox
  (pipeline/sandbox.py: a process per job, namespaces, limits). A sandbox setup error is
  not a verdict on the sample: nothing is stored, so the next run retries it.

Both rules key their verdicts by a config hash (rule, version, tolerance or timeout), like the
cheap filters: only samples without a verdict under the current hash are checked.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import polars as pl

from filters.answer_match import DEFAULT_REL_TOL, VERIFIABLE_TYPES, AnswerMatch, check_rows
from filters.base import config_fingerprint
from filters.code_extract import build_test_program, extract_program, required_names
from pipeline.progress import NoProgress, Progress
from pipeline.stages.verdicts import RuleConfig, record_configs, unjudged, verdict_frame
from pipeline.store import Store

# Which questions each check applies to (SQL over sample_view; shared with the Ray chunks).
VERIFIABLE_WHERE = f"answer_type IN {VERIFIABLE_TYPES} AND reference_answer IS NOT NULL"
_CHUNK = 2000
_TASK_ROWS = 64
CODE_RULE, CODE_RULE_VERSION = "code_tests", 1
CODE_WHERE = "answer_type = 'code' AND tests IS NOT NULL AND len(tests) > 0"
_CODE_CHUNK = 64


@dataclass
class VerifyReport:
    checked: int
    correct: int
    code_checked: int = 0
    code_passed: int = 0
    code_errors: int = 0  # sandbox setup problems: no verdict stored, retried next run


def run_code_tests(store: Store, run_id: str, workers: int = 2, timeout_s: float = 10,
                   progress: Progress | None = None) -> tuple[int, int, int]:
    from pipeline.sandbox import run_many

    progress = progress or NoProgress()
    checked = passed = errors = 0
    retry_later: set[str] = set()
    params = {"timeout_s": timeout_s}
    config_hash = config_fingerprint(CODE_RULE, CODE_RULE_VERSION, params)
    progress.start(f"verify: {CODE_RULE}", 0)
    while True:
        batch = unjudged(store, CODE_RULE, CODE_RULE_VERSION, where=CODE_WHERE, limit=_CODE_CHUNK + len(retry_later),
                         config_hash=config_hash)
        batch = batch.filter(~pl.col("sample_id").is_in(list(retry_later)))
        if batch.is_empty():
            break
        jobs = [(extract_program(r["answer"], required_names(r["tests"])), build_test_program(r["tests"]))
                for r in batch.iter_rows(named=True)]
        results = run_many(jobs, workers=workers, timeout_s=timeout_s)
        ok = [r.status != "error" for r in results]
        retry_later |= {sid for sid, good in zip(batch["sample_id"], ok) if not good}
        errors += ok.count(False)
        kept = batch.filter(pl.Series(ok))
        frame = pl.DataFrame(
            {"passed": [r.passed for r, g in zip(results, ok) if g],
             "score": [float(r.passed) for r, g in zip(results, ok) if g],
             "reason": [None if r.passed else f"{r.status}: {r.detail}" for r, g in zip(results, ok) if g]},
            schema={"passed": pl.Boolean, "score": pl.Float64, "reason": pl.String})
        store.insert("verdicts", verdict_frame(kept["sample_id"].to_list(), frame, stage="verify", rule=CODE_RULE,
                                               version=CODE_RULE_VERSION, run_id=run_id, config_hash=config_hash))
        checked += kept.height
        passed += int(frame["passed"].sum())
        progress.advance(batch.height)
    record_configs(store, [RuleConfig(CODE_RULE, "verify", CODE_RULE_VERSION, config_hash, params)], run_id)
    progress.done()
    return checked, passed, errors


def run_verify(store: Store, run_id: str, workers: int = 2, progress: Progress | None = None) -> VerifyReport:
    progress = progress or NoProgress()
    rule = AnswerMatch(DEFAULT_REL_TOL).configured(rel_tol=DEFAULT_REL_TOL)  # check_rows uses the default
    checked = correct = 0
    progress.start("verify: answer_match", 0)
    pool = None
    try:
        while True:
            batch = unjudged(store, rule.name, rule.version, where=VERIFIABLE_WHERE, limit=_CHUNK,
                             config_hash=rule.config_hash)
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
                                                   rule=rule.name, version=rule.version, run_id=run_id,
                                                   config_hash=rule.config_hash))
            checked += batch.height
            correct += int(frame["passed"].sum())
        record_configs(store, [RuleConfig(rule.name, "verify", rule.version, rule.config_hash, rule.params)], run_id)
    finally:
        if pool is not None:
            pool.shutdown()
        progress.done()
    code_checked, code_passed, code_errors = run_code_tests(store, run_id, workers=workers, progress=progress)
    return VerifyReport(checked, correct, code_checked, code_passed, code_errors)
