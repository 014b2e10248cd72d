"""The coordinator's loop: ingest a killed run's parts, list the todo, hand chunks to an
executor (a few in flight, read lazily so memory stays flat), ingest each finished batch of
parts in one transaction. Returns what the single-process stages return.

The executor is anything with
    capacity: int                                 chunks in flight at most
    submit(job: ChunkJob) -> handle
    wait(handles) -> (done, running)              blocks until at least one is done
    result(handle) -> ChunkResult                 raises the chunk's error
(flows/scaleout_flow.py: Prefect tasks on Ray). A chunk error stops the stage; the parts
already written stay on disk and the next run ingests them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from filters.base import SampleFilter
from pipeline.progress import NoProgress, Progress
from pipeline.scaleout.chunks import (ChunkJob, ChunkResult, answer_rule, code_rule, filter_jobs, filter_todo,
                                      verify_jobs, verify_todo)
from pipeline.scaleout.parts import Tally, ingest_parts, merge, new_attempt, part_path, pending_parts, sweep
from pipeline.stages.filter import RuleCount
from pipeline.stages.verdicts import RuleConfig, record_configs
from pipeline.stages.verify import VerifyReport
from pipeline.store import Store


class Executor(Protocol):
    capacity: int

    def submit(self, job: ChunkJob) -> Any: ...
    def wait(self, handles: list) -> tuple[list, list]: ...
    def result(self, handle) -> ChunkResult: ...


def drive(store: Store, jobs: Iterator[ChunkJob], executor: Executor,
          progress: Progress) -> tuple[dict[tuple[str, str], Tally], list[ChunkResult]]:
    tallies: dict[tuple[str, str], Tally] = {}
    results: list[ChunkResult] = []
    running: list = []

    def collect(done: list) -> None:
        finished = [executor.result(h) for h in done]
        merge(tallies, ingest_parts(store, [r.part for r in finished if r.part]))
        results.extend(finished)
        progress.advance(sum(r.samples for r in finished))

    for job in jobs:
        while len(running) >= executor.capacity:
            done, running = executor.wait(running)
            collect(done)
        running.append(executor.submit(job))
    while running:
        done, running = executor.wait(running)
        collect(done)
    return tallies, results


def filter_chunks(store: Store, filters: list[SampleFilter], run_id: str, executor: Executor, *, stage: str,
                  chunk_rows: int, workers: int, progress: Progress | None = None) -> list[RuleCount]:
    """pipeline/stages/filter.py run_filters, with the checks done by the executor's workers."""
    progress = progress or NoProgress()
    tallies = ingest_parts(store, pending_parts(store.path, stage))  # a killed run's finished chunks
    todo = filter_todo(store, filters)
    progress.start(f"{stage}: {len(filters)} rules", todo.height)
    attempt = new_attempt()
    jobs = filter_jobs(store, filters, todo, chunk_rows=chunk_rows, workers=workers,
                       part_for=lambda i: part_path(store.path, run_id, stage, i, attempt))
    merge(tallies, drive(store, jobs, executor, progress)[0])
    sweep(store.path)
    record_configs(store, [RuleConfig(f.name, stage, f.version, f.config_hash, f.params) for f in filters], run_id)
    progress.done()
    done = [tallies.get((f.name, f.config_hash), Tally()) for f in filters]
    return [RuleCount(f.name, t.new, t.failed) for f, t in zip(filters, done)]


def verify_chunks(store: Store, run_id: str, executor: Executor, *, chunk_rows: int, workers: int,
                  timeout_s: float = 10, progress: Progress | None = None) -> VerifyReport:
    """pipeline/stages/verify.py run_verify (answer_match, then code_tests) on the executor's
    workers; timeout_s: the code tests' (the executor's code task must use the same)."""
    progress = progress or NoProgress()
    tallies = ingest_parts(store, pending_parts(store.path, "verify"))
    answer_todo, code_todo = verify_todo(store, timeout_s)
    progress.start("verify: answer_match + code_tests", answer_todo.height + code_todo.height)
    attempt = new_attempt()
    jobs = verify_jobs(store, answer_todo, code_todo, chunk_rows=chunk_rows, workers=workers,
                       part_for=lambda i: part_path(store.path, run_id, "verify", i, attempt))
    more, results = drive(store, jobs, executor, progress)
    merge(tallies, more)
    sweep(store.path)
    answer, code_cfg = answer_rule(), code_rule(timeout_s)
    record_configs(store, [RuleConfig(answer.name, "verify", answer.version, answer.config_hash, answer.params),
                           code_cfg], run_id)
    progress.done()
    answers = tallies.get((answer.name, answer.config_hash), Tally())
    code = tallies.get((code_cfg.rule, code_cfg.config_hash), Tally())
    return VerifyReport(answers.new, answers.new - answers.failed, code.new, code.new - code.failed,
                        sum(r.errors for r in results))
