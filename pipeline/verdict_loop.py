"""The one loop of the verdict passes (cheap filters, answer decontamination, verification):
every rule on every sample it applies to that lacks its verdict, chunk by chunk, on an executor
chosen once per run.

    run_verdicts(store, rules, run_id, stage, executor=INLINE) -> list[RuleCount]

1. Parts a killed Ray run left are ingested first (pipeline/scaleout/parts.py).
2. What is due is listed once: per sample, a flag per rule (it applies, by the rule's SQL
   `applies` over the sample view, and there is no verdict under the rule's current config
   hash). Listing once keeps the cost linear in the number of samples (re-querying "what is
   unjudged" per chunk grew quadratically: bench/scale.py).
3. Chunks of due samples are read lazily and handed to the executor; `check_chunk` (pure: no
   database) computes their verdicts. Inline, the verdicts come back as a frame and are written
   in one transaction per chunk; on Ray (flows/ray_executor.py) a worker writes a Parquet part
   and this process ingests it. A killed run leaves whole chunks either way.
4. When the pass ends, each rule's config hash is recorded (pipeline/verdicts.py).

A result row with `passed` null is no verdict (e.g. the sandbox could not start): nothing is
stored, the sample stays due, and the error is counted.
"""

from __future__ import annotations

import math
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from filters.base import SampleFilter
from pipeline.progress import NoProgress, Progress
from pipeline.scaleout.parts import (Tally, ingest_parts, merge, new_attempt, part_path, pending_parts, sweep,
                                     write_part)
from pipeline.verdicts import SAMPLE_VIEW, RuleConfig, record_configs, verdict_frame
from pipeline.store import Store


@dataclass
class RuleCount:
    rule: str
    checked: int  # verdicts stored
    failed: int
    errors: int = 0  # rows the rule could not judge (no verdict stored; due again next run)


@dataclass
class ChunkJob:
    """One unit of work: sample rows (the sample view's columns) with a `due_<i>` flag per rule."""
    index: int
    stage: str
    run_id: str
    rows: pl.DataFrame
    part: str | None = None  # where a worker writes its verdicts (None: returned in memory)


@dataclass
class ChunkResult:
    index: int
    samples: int
    frame: pl.DataFrame | None = None  # the verdicts, when returned in memory
    part: str | None = None  # or the Parquet part they were written to (None with no verdicts)
    rows: int = 0  # verdict rows
    errors: dict[str, int] = field(default_factory=dict)
    node: str = ""
    seconds: float = 0.0  # wall time of the checks (and part write) where they ran
    cpu_seconds: float = 0.0  # CPU time of that process meanwhile


def _due(i: int) -> str:
    return f"due_{i}"


def rule_keys_frame(rules: list[SampleFilter]) -> pl.DataFrame:
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ValueError(f"two rules share a name in one pass: {sorted({n for n in names if names.count(n) > 1})}")
    return pl.DataFrame({"rule": names, "config_hash": [r.config_hash for r in rules]},
                        schema={"rule": pl.String, "config_hash": pl.String})


def due_frame(store: Store, rules: list[SampleFilter]) -> pl.DataFrame:
    """sample_id and due_<i> per rule, for samples due for at least one rule, in id order."""
    flags = ", ".join(f"coalesce(({r.applies}), false) AND NOT list_contains(coalesce(d.rules, []), ?) AS {_due(i)}"
                      for i, r in enumerate(rules))
    return store.frame(f"""
        WITH done AS (SELECT v.sample_id, list(v.rule) AS rules FROM verdicts v
                      JOIN rule_keys k USING (rule, config_hash) GROUP BY v.sample_id)
        SELECT * FROM (SELECT x.sample_id, {flags} FROM ({SAMPLE_VIEW}) x LEFT JOIN done d USING (sample_id))
        WHERE {" OR ".join(_due(i) for i in range(len(rules)))}
        ORDER BY sample_id""", [r.name for r in rules], rule_keys=rule_keys_frame(rules))


def chunk_sizes(n: int, chunk_rows: int, workers: int) -> list[int]:
    """At most chunk_rows per chunk, and a whole multiple of `workers` chunks (so the last round
    does not leave workers idle), as even as possible."""
    if n <= 0:
        return []
    count = math.ceil(n / chunk_rows)
    count = min(n, math.ceil(count / workers) * workers)
    base, extra = divmod(n, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


def check_chunk(job: ChunkJob, rules: list[SampleFilter]) -> ChunkResult:
    """Every rule on the chunk's rows it is due for (pure: no database). Returns the verdicts in
    memory, or written as the job's part when it names one."""
    wall, cpu = time.perf_counter(), time.process_time()
    frames, errors = [], Counter()
    flags = [_due(i) for i in range(len(rules))]
    for flag, rule in zip(flags, rules):
        part = job.rows.filter(pl.col(flag)).drop(flags)
        if part.is_empty():
            continue
        results = rule.check_batch(part)
        judged = results["passed"].is_not_null()
        if not judged.all():
            errors[rule.name] += int((~judged).sum())
            part, results = part.filter(judged), results.filter(judged)
        frames.append(verdict_frame(part["sample_id"].to_list(), results, stage=job.stage, rule=rule.name,
                                    version=rule.version, run_id=job.run_id, config_hash=rule.config_hash))
    frame = pl.concat(frames) if frames else None
    rows, path = (frame.height if frame is not None else 0), None
    if job.part is not None and frame is not None and frame.height:
        path, frame = str(write_part(frame, job.part)), None
    return ChunkResult(job.index, job.rows.height, frame, path, rows, dict(errors), socket.gethostname(),
                       time.perf_counter() - wall, time.process_time() - cpu)


class Executor(Protocol):
    """Where chunks are checked. `run(body, name)` calls body(self) where submitting works
    (inside a Prefect flow on Ray, for the Ray executor); then at most `capacity` chunks are in
    flight."""
    capacity: int
    workers: int  # CPUs the chunks spread over (for chunk sizes)
    writes_parts: bool

    def run(self, body, name: str): ...
    def share(self, rules: list[SampleFilter]) -> Any: ...  # rules as the workers receive them
    def submit(self, job: ChunkJob, rules: Any) -> Any: ...
    def wait(self, handles: list) -> tuple[list, list]: ...  # blocks until at least one is done
    def result(self, handle) -> ChunkResult: ...  # raises the chunk's error
    def embedder(self) -> Any: ...  # where the domain stage's embeddings run (None: this process)


class InlineExecutor:
    """Chunks checked in this process, one at a time (rules parallelize inside: the sandbox and
    Math-Verify use their own worker processes)."""
    capacity = 1
    workers = 1
    writes_parts = False

    def run(self, body, name: str = ""):
        return body(self)

    def share(self, rules):
        return rules

    def submit(self, job: ChunkJob, rules) -> ChunkResult:
        return check_chunk(job, rules)

    def wait(self, handles: list) -> tuple[list, list]:
        return handles, []

    def result(self, handle: ChunkResult) -> ChunkResult:
        return handle

    def embedder(self):
        return None


INLINE = InlineExecutor()


def _tally(frame: pl.DataFrame) -> dict[tuple[str, str], Tally]:
    rows = frame.group_by("rule", "config_hash").agg(pl.len().alias("n"), (~pl.col("passed")).sum().alias("f"))
    return {(r["rule"], r["config_hash"]): Tally(r["n"], r["f"]) for r in rows.iter_rows(named=True)}


def chunk_jobs(store: Store, due: pl.DataFrame, stage: str, run_id: str, *, chunk_rows: int, workers: int,
               part_for=None) -> Iterator[ChunkJob]:
    """The due samples in chunks, each read when the executor has room for it (memory stays
    flat); part_for(index) -> where a worker writes the chunk's verdicts (None: in memory)."""
    start = 0
    for index, size in enumerate(chunk_sizes(due.height, chunk_rows, workers)):
        chunk = due.slice(start, size)
        start += size
        rows = store.frame(f"SELECT x.* FROM ({SAMPLE_VIEW}) x JOIN chunk USING (sample_id)",
                           chunk=chunk.select("sample_id"))
        yield ChunkJob(index, stage, run_id, chunk.join(rows, on="sample_id", how="left", maintain_order="left"),
                       str(part_for(index)) if part_for else None)


def drive(store: Store, jobs: Iterator[ChunkJob], executor: Executor, rules: Any,
          progress: Progress) -> tuple[dict[tuple[str, str], Tally], list[ChunkResult]]:
    """Keep up to `capacity` chunks in flight; store each finished batch's verdicts."""
    tallies: dict[tuple[str, str], Tally] = {}
    results: list[ChunkResult] = []
    running: list = []

    def collect(done: list) -> None:
        finished = [executor.result(h) for h in done]
        merge(tallies, ingest_parts(store, [r.part for r in finished if r.part]))
        frames = [r.frame for r in finished if r.frame is not None and r.frame.height]
        if frames:
            frame = pl.concat(frames)
            store.insert("verdicts", frame)
            merge(tallies, _tally(frame))
        results.extend(finished)
        progress.advance(sum(r.samples for r in finished))

    for job in jobs:
        while len(running) >= executor.capacity:
            done, running = executor.wait(running)
            collect(done)
        running.append(executor.submit(job, rules))
    while running:
        done, running = executor.wait(running)
        collect(done)
    return tallies, results


def run_verdicts(store: Store, rules: list[SampleFilter], run_id: str, stage: str,
                 executor: Executor = INLINE, chunk_rows: int = 10_000,
                 progress: Progress | None = None) -> list[RuleCount]:
    """One verdict pass (see the module docstring); counts per rule, in the rules' order."""
    progress = progress or NoProgress()
    if not rules:
        return []
    tallies = ingest_parts(store, pending_parts(store.path, stage))  # a killed run's finished chunks
    due = due_frame(store, rules)
    progress.start(f"{stage}: {len(rules)} rules", due.height)
    errors: Counter = Counter()

    def body(ex: Executor) -> None:
        part_for = (lambda i, attempt=new_attempt(): part_path(store.path, run_id, stage, i, attempt)) \
            if ex.writes_parts else None
        jobs = chunk_jobs(store, due, stage, run_id, chunk_rows=chunk_rows, workers=ex.workers, part_for=part_for)
        more, results = drive(store, jobs, ex, ex.share(rules), progress)
        merge(tallies, more)
        for r in results:
            errors.update(r.errors)

    try:
        if due.height:
            executor.run(body, stage)
        sweep(store.path)
        record_configs(store, [RuleConfig(r.name, stage, r.version, r.config_hash, r.hash_params()) for r in rules],
                       run_id)
    finally:
        progress.done()
    counts = []
    for r in rules:
        t = tallies.get((r.name, r.config_hash), Tally())
        counts.append(RuleCount(r.name, t.new, t.failed, errors.get(r.name, 0)))
    return counts
