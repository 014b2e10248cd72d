"""Chunks of verdict work: the coordinator lists what lacks a verdict and reads it from DuckDB
chunk by chunk; a worker computes a chunk's verdicts (pure rules, no database) and writes
them as one Parquet part (pipeline/scaleout/parts.py).

The checks are the single-process stages' own (pipeline/stages/filter.py, verify.py), cut at
the chunk boundary, so both paths store the same verdicts.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import polars as pl

from filters.answer_match import DEFAULT_REL_TOL, AnswerMatch, check_rows
from filters.base import RESULT_SCHEMA, SampleFilter, config_fingerprint
from filters.code_extract import build_test_program, extract_program, required_names
from pipeline.scaleout.parts import write_part
from pipeline.stages.filter import rule_keys_frame
from pipeline.stages.verdicts import SAMPLE_VIEW, RuleConfig, verdict_frame
from pipeline.stages.verify import CODE_WHERE, VERIFIABLE_WHERE, CODE_RULE, CODE_RULE_VERSION
from pipeline.store import Store

@dataclass
class ChunkJob:
    """One unit of work for a worker: the sample rows (SAMPLE_VIEW columns) and where its part goes."""
    index: int
    kind: str          # filters | answer_match | code_tests
    rows: pl.DataFrame
    part: str          # path of the Parquet part the worker writes
    # filters only: (sample_id, rule) verdicts the chunk's samples already have
    have: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema={"sample_id": pl.String, "rule": pl.String}))


@dataclass
class ChunkResult:
    index: int
    part: str | None   # None: nothing to store (e.g. every sandbox job failed to start)
    rows: int          # verdict rows in the part
    samples: int       # samples the chunk covered
    errors: int = 0    # code_tests: sandbox setup errors (no verdict stored, retried next run)
    node: str = ""
    seconds: float = 0.0  # wall time of the chunk's checks and part write on the worker
    cpu_seconds: float = 0.0  # CPU time of the worker process meanwhile (all its threads)


def chunk_sizes(n: int, chunk_rows: int, workers: int) -> list[int]:
    """At most chunk_rows per chunk, and a whole multiple of `workers` chunks (so the last round
    does not leave workers idle), as even as possible."""
    if n <= 0:
        return []
    count = math.ceil(n / chunk_rows)
    count = min(n, math.ceil(count / workers) * workers)
    base, extra = divmod(n, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


def _slices(todo: pl.DataFrame, chunk_rows: int, workers: int) -> Iterator[pl.DataFrame]:
    start = 0
    for size in chunk_sizes(todo.height, chunk_rows, workers):
        yield todo.slice(start, size)
        start += size


def _rows(store: Store, ids: pl.DataFrame) -> pl.DataFrame:
    return store.frame(f"SELECT x.* FROM ({SAMPLE_VIEW}) x JOIN chunk USING (sample_id) ORDER BY sample_id",
                       chunk=ids.select("sample_id"))


# --- rule filters (and answer decontamination, which is a rule too) -------------------------------


def filter_todo(store: Store, filters: list[SampleFilter]) -> pl.DataFrame:
    """(sample_id, n): samples missing some of the rules' verdicts under their current config
    hash, n = how many they have (as run_filters lists them)."""
    return store.frame("""
        SELECT s.sample_id, coalesce(done.n, 0) AS n FROM samples s
        LEFT JOIN (SELECT v.sample_id, count(*) AS n FROM verdicts v JOIN rule_keys k USING (rule, config_hash)
                   GROUP BY v.sample_id) done USING (sample_id)
        WHERE coalesce(done.n, 0) < ? ORDER BY s.sample_id
    """, [len(filters)], rule_keys=rule_keys_frame(filters))


def filter_jobs(store: Store, filters: list[SampleFilter], todo: pl.DataFrame, *, chunk_rows: int, workers: int,
                part_for) -> Iterator[ChunkJob]:
    """Read the todo chunk by chunk (lazily: a chunk is read when the executor has room for it).
    part_for(index) -> path of the chunk's part."""
    keys = rule_keys_frame(filters)
    for index, chunk in enumerate(_slices(todo, chunk_rows, workers)):
        partial = chunk.filter(pl.col("n") > 0).select("sample_id")
        have = store.frame("""SELECT v.sample_id, v.rule FROM verdicts v JOIN partial USING (sample_id)
                              JOIN rule_keys k USING (rule, config_hash)""", partial=partial, rule_keys=keys) \
            if partial.height else pl.DataFrame(schema={"sample_id": pl.String, "rule": pl.String})
        yield ChunkJob(index, "filters", _rows(store, chunk), str(part_for(index)), have)


def check_filter_chunk(job: ChunkJob, filters: list[SampleFilter], *, stage: str, run_id: str) -> ChunkResult:
    """Worker side: every rule on the chunk's samples that lack its verdict; one part."""
    t = _clock()
    frames = []
    for f in filters:
        judged = job.have.filter(pl.col("rule") == f.name)["sample_id"]
        part = job.rows.filter(~pl.col("sample_id").is_in(judged.implode()))
        if part.is_empty():
            continue
        frames.append(verdict_frame(part["sample_id"].to_list(), f.check_batch(part), stage=stage, rule=f.name,
                                    version=f.version, run_id=run_id, config_hash=f.config_hash))
    return _finish(job, frames, t)


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _finish(job: ChunkJob, frames: list[pl.DataFrame], t: tuple[float, float], errors: int = 0) -> ChunkResult:
    rows = sum(f.height for f in frames)
    path = write_part(pl.concat(frames), job.part) if rows else None
    return ChunkResult(job.index, str(path) if path else None, rows, job.rows.height, errors,
                       socket.gethostname(), time.perf_counter() - t[0], time.process_time() - t[1])


# --- verification ----------------------------------------------------------------------------------


# The verify rules as run_verify / run_code_tests configure them (same config hashes).
def answer_rule() -> AnswerMatch:
    return AnswerMatch(DEFAULT_REL_TOL).configured(rel_tol=DEFAULT_REL_TOL)  # check_rows uses the default


def code_rule(timeout_s: float) -> RuleConfig:
    params = {"timeout_s": timeout_s}
    return RuleConfig(CODE_RULE, "verify", CODE_RULE_VERSION, config_fingerprint(CODE_RULE, CODE_RULE_VERSION, params),
                      params)


def _unjudged_ids(store: Store, rule: str, config_hash: str, where: str) -> pl.DataFrame:
    return store.frame(f"""
        SELECT x.sample_id FROM ({SAMPLE_VIEW}) x
        WHERE {where} AND NOT EXISTS (
            SELECT 1 FROM verdicts v WHERE v.sample_id = x.sample_id AND v.rule = ? AND v.config_hash = ?)
        ORDER BY sample_id""", [rule, config_hash])


def verify_todo(store: Store, timeout_s: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(answer_match todo, code_tests todo): sample ids lacking each verdict under its config hash."""
    return (_unjudged_ids(store, AnswerMatch.name, answer_rule().config_hash, VERIFIABLE_WHERE),
            _unjudged_ids(store, CODE_RULE, code_rule(timeout_s).config_hash, CODE_WHERE))


def verify_jobs(store: Store, answer_todo: pl.DataFrame, code_todo: pl.DataFrame, *, chunk_rows: int,
                workers: int, part_for) -> Iterator[ChunkJob]:
    index = 0
    for kind, todo in (("answer_match", answer_todo), ("code_tests", code_todo)):
        for chunk in _slices(todo, chunk_rows, workers):
            yield ChunkJob(index, kind, _rows(store, chunk), str(part_for(index)))
            index += 1


def check_answer_chunk(job: ChunkJob, *, run_id: str) -> ChunkResult:
    """Worker side: Math-Verify answer checks. Its timeouts use signal.alarm, which needs the
    main thread: Ray runs a task in its worker's main thread; anywhere else the checks go to
    a spawned process."""
    t = _clock()
    rule = answer_rule()
    rows = job.rows.select(AnswerMatch.needs).to_dicts()
    if threading.current_thread() is threading.main_thread():
        results = check_rows(rows)
    else:
        with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
            results = pool.submit(check_rows, rows).result()
    frame = pl.DataFrame(results, schema=RESULT_SCHEMA, orient="row")
    return _finish(job, [verdict_frame(job.rows["sample_id"].to_list(), frame, stage="verify", rule=rule.name,
                                       version=rule.version, run_id=run_id, config_hash=rule.config_hash)], t)


def check_code_chunk(job: ChunkJob, *, run_id: str, timeout_s: float = 10, sandboxes: int = 1) -> ChunkResult:
    """Worker side: each code answer's program against its question's tests in the sandbox
    (one process per job). A sandbox setup error is not a verdict: no row, retried next run."""
    from pipeline.sandbox import run_many

    t = _clock()
    batch = job.rows
    jobs = [(extract_program(r["answer"], required_names(r["tests"])), build_test_program(r["tests"]))
            for r in batch.iter_rows(named=True)]
    results = run_many(jobs, workers=sandboxes, timeout_s=timeout_s)
    ok = [r.status != "error" for r in results]
    kept = [r for r, good in zip(results, ok) if good]
    frame = pl.DataFrame({"passed": [r.passed for r in kept], "score": [float(r.passed) for r in kept],
                          "reason": [None if r.passed else f"{r.status}: {r.detail}" for r in kept]},
                         schema=RESULT_SCHEMA)
    ids = batch.filter(pl.Series(ok, dtype=pl.Boolean))["sample_id"].to_list() if batch.height else []
    frames = [verdict_frame(ids, frame, stage="verify", rule=CODE_RULE, version=CODE_RULE_VERSION, run_id=run_id,
                            config_hash=code_rule(timeout_s).config_hash)]
    return _finish(job, frames, t, errors=ok.count(False))
