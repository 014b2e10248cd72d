"""Rule filters, answer decontamination, verification and sentence embeddings as Prefect tasks
on Ray (prefect-ray's RayTaskRunner), when `scaleout.runner: ray`.

    filter_on_ray(db, config, run_id, index) -> list[RuleCount]   # what run_filters returns (both passes)
    verify_on_ray(db, run_id, scaleout)      -> VerifyReport        # what run_verify returns
    classify_on_ray(db, config, run_id, ids) -> dict                # what classify_run_questions returns

Embeddings (the domain stage's kNN: the labelled pools the first time, then the questions that
need kNN) are chunks of texts in, float32 vectors out through Ray's object store; each worker
loads the model once. They are not stored in DuckDB (the labelled pools' go to the embedding
cache file, in the flow's process), so there are no parts to ingest.

Each is a subflow whose body is the coordinator (pipeline/scaleout/coordinator.py): it runs in
the flow's process, reads chunks from DuckDB, submits one task per chunk and ingests the
Parquet parts the tasks write. The tasks run on Ray workers, compute verdicts with the pure
rules and never open the DuckDB file: DuckDB takes one read-write process per file, and that
process is the run's (pipeline/scaleout/parts.py).

Ray: `scaleout.address` None starts a local cluster of `num_workers` CPUs for the stage (and
stops it after); "auto" joins the cluster `ray start` made on this machine, "ray://host:10001"
a remote one. Wrap several stages in `ray_cluster(scaleout)` to start Ray once for all of them.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import ray
from prefect import flow, task
from prefect.cache_policies import NONE
from prefect_ray import RayTaskRunner

from filters.base import SampleFilter
from filters.decontam import AnswerContamination, NgramIndex
from filters.registry import cheap_filters
from pipeline.domains.embed import DIM, Embedder, check_texts, model_id
from pipeline.progress import NoProgress, Progress
from pipeline.runtime_env import curate_home
from pipeline.scaleout.chunks import (ChunkJob, ChunkResult, check_answer_chunk, check_code_chunk,
                                      check_filter_chunk)
from pipeline.scaleout.coordinator import filter_chunks, verify_chunks
from pipeline.stages.domains import classify_run_questions
from pipeline.stages.filter import RuleCount
from pipeline.stages.screen import benchmark_index
from pipeline.stages.verify import VerifyReport
from pipeline.store import Store
from schemas.config import CurateConfig
from schemas.scaleout import ScaleoutConfig

# Chunk tasks return a small summary and write their own part: nothing for Prefect to cache or
# persist. A retry recomputes the chunk (a part is written whole or not at all).
_task = dict(cache_policy=NONE, persist_result=False, retries=1)
_IN_FLIGHT_PER_CPU = 2  # chunks queued per worker CPU: the next one is ready when a worker frees up
_CODE_TIMEOUT_S = 10  # run_verify's (run_code_tests' default): part of the code_tests config hash
_EMBED_CHUNK = 256  # texts per embedding task: ~4-5 s on one CPU, small next to loading the model


# --- Ray --------------------------------------------------------------------------------------------


def _init_args(scaleout: ScaleoutConfig) -> tuple[str | None, dict]:
    """(address for RayTaskRunner, ray.init keyword arguments)."""
    if scaleout.address is None:
        # "local": a new cluster for this run, never one found in /tmp/ray by accident.
        kwargs = dict(num_cpus=scaleout.num_workers, include_dashboard=False)
        temp = curate_home() / "ray"
        if len(str(temp)) <= 60:  # Ray's session sockets live below it (Unix socket paths max 107 bytes)
            kwargs["_temp_dir"] = str(temp)
        return "local", kwargs
    if scaleout.address == "auto":
        # RayTaskRunner passes "auto" as no address, which starts a cluster when none runs;
        # joining must fail instead, so it goes to ray.init itself.
        return None, {"address": "auto"}
    return scaleout.address, {}


def ray_runner(scaleout: ScaleoutConfig) -> RayTaskRunner:
    address, kwargs = _init_args(scaleout)
    return RayTaskRunner(address=address, init_kwargs=kwargs)


@contextmanager
def ray_cluster(scaleout: ScaleoutConfig) -> Iterator[None]:
    """Start (or join) Ray once for several stages; the stages' task runners then use it."""
    if scaleout.runner != "ray" or ray.is_initialized():
        yield
        return
    address, kwargs = _init_args(scaleout)
    ray.init(address, namespace="prefect", **kwargs)
    try:
        yield
    finally:
        ray.shutdown()


def _cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class _RayTasks:
    """The coordinator's executor: chunk tasks submitted to the flow's Ray task runner."""

    def __init__(self, submit, capacity: int):
        self._submit = submit
        self.capacity = capacity

    def submit(self, job: ChunkJob):
        return self._submit(job)

    def wait(self, futures: list) -> tuple[list, list]:
        ready, _ = ray.wait([f.wrapped_future for f in futures], num_returns=1)
        ready = set(ready)
        return [f for f in futures if f.wrapped_future in ready], [f for f in futures if f.wrapped_future not in ready]

    def result(self, future) -> ChunkResult:
        return future.result()


# --- tasks (run on Ray workers) ----------------------------------------------------------------------


@task(name="filter-chunk", task_run_name="{stage}-chunk-{index}", **_task)
def filter_chunk_task(index: int, rows, have, part: str, rules: list[SampleFilter], stage: str,
                      run_id: str) -> ChunkResult:
    return check_filter_chunk(ChunkJob(index, "filters", rows, part, have), rules, stage=stage, run_id=run_id)


@task(name="answer-match-chunk", task_run_name="answer-match-chunk-{index}", **_task)
def answer_chunk_task(index: int, rows, part: str, run_id: str) -> ChunkResult:
    return check_answer_chunk(ChunkJob(index, "answer_match", rows, part), run_id=run_id)


@task(name="code-tests-chunk", task_run_name="code-tests-chunk-{index}", **_task)
def code_chunk_task(index: int, rows, part: str, run_id: str, timeout_s: float) -> ChunkResult:
    # One sandbox at a time per task: a task holds one Ray CPU.
    return check_code_chunk(ChunkJob(index, "code_tests", rows, part), run_id=run_id, timeout_s=timeout_s,
                            sandboxes=1)


_worker_embedder: Embedder | None = None  # per Ray worker process: the model is loaded by its first chunk


def _embedder_here() -> Embedder:
    global _worker_embedder
    if _worker_embedder is None:
        _worker_embedder = Embedder(threads=1)  # a task holds one Ray CPU
    return _worker_embedder


@task(name="embed-chunk", task_run_name="embed-chunk-{index}", **_task)
def embed_chunk_task(index: int, texts: list[str]) -> np.ndarray:
    return _embedder_here().embed(texts)


# --- subflows (the coordinator) --------------------------------------------------------------------


@dataclass
class _Live:
    """What the subflows need that is not JSON (Prefect records flow parameters)."""
    passes: list[tuple[str, list[SampleFilter]]]  # (stage, rules) in order
    progress: Progress
    texts: list[str] = field(default_factory=list)  # to embed


_live: contextvars.ContextVar[_Live] = contextvars.ContextVar("scaleout_live")


def _current() -> _Live:
    # The flow functions reach the context variable only through this module-level function:
    # Ray pickles the flow (it travels in each task's Prefect context) and cloudpickle takes a
    # module-level function by reference, a ContextVar global not at all.
    return _live.get()


@flow(name="rule-filters-on-ray", persist_result=False)
def filters_flow(db: str, run_id: str, scaleout: ScaleoutConfig) -> list[RuleCount]:
    live = _current()
    cpus = _cluster_cpus()
    counts: list[RuleCount] = []
    with Store(db) as store:
        for stage, rules in live.passes:
            rules_ref = ray.put(rules)  # once per pass, not once per chunk (the decontam index is MBs)

            def submit(job: ChunkJob, stage=stage, rules_ref=rules_ref):
                return filter_chunk_task.submit(job.index, job.rows, job.have, job.part, rules_ref, stage, run_id)

            counts += filter_chunks(store, rules, run_id, _RayTasks(submit, cpus * _IN_FLIGHT_PER_CPU),
                                    stage=stage, chunk_rows=scaleout.chunk_rows, workers=cpus,
                                    progress=live.progress)
    return counts


@flow(name="verify-on-ray", persist_result=False)
def verify_flow(db: str, run_id: str, scaleout: ScaleoutConfig) -> VerifyReport:
    cpus = _cluster_cpus()

    def submit(job: ChunkJob):
        if job.kind == "answer_match":
            return answer_chunk_task.submit(job.index, job.rows, job.part, run_id)
        return code_chunk_task.submit(job.index, job.rows, job.part, run_id, _CODE_TIMEOUT_S)

    with Store(db) as store:
        return verify_chunks(store, run_id, _RayTasks(submit, cpus * _IN_FLIGHT_PER_CPU),
                             chunk_rows=scaleout.chunk_rows, workers=cpus, timeout_s=_CODE_TIMEOUT_S,
                             progress=_current().progress)


@flow(name="embeddings-on-ray", persist_result=False)
def embeddings_flow(count: int, chunk: int = _EMBED_CHUNK) -> np.ndarray:
    live = _current()
    texts = live.texts
    futures = [embed_chunk_task.submit(i, texts[start:start + chunk])
               for i, start in enumerate(range(0, count, chunk))]
    live.progress.start("domains: embed on ray", count)
    parts = []
    for future in futures:  # in order: the vectors line up with the texts
        parts.append(future.result())
        live.progress.advance(len(parts[-1]))
    live.progress.done()
    return np.vstack(parts) if parts else np.zeros((0, DIM), np.float32)


# --- what the curate flow calls ----------------------------------------------------------------------


class RayEmbedder:
    """The Embedder interface (embed, model_id) with the work done by embed-chunk tasks on Ray.
    Same weights as the local Embedder, so the same embedding cache (vectors agree to ~1e-6;
    batches are padded differently)."""

    def __init__(self, scaleout: ScaleoutConfig):
        self.scaleout = scaleout

    @property
    def model_id(self) -> str:
        return model_id()

    def embed(self, texts: list[str], batch_size: int = 32, progress: Progress | None = None) -> np.ndarray:
        check_texts(texts)  # here, not in a worker: the error names the text
        token = _live.set(_Live([], progress or NoProgress(), list(texts)))
        try:
            return embeddings_flow.with_options(task_runner=ray_runner(self.scaleout))(len(texts))
        finally:
            _live.reset(token)


def classify_on_ray(db: str | Path, config: CurateConfig, run_id: str, question_ids: list[str],
                    progress: Progress | None = None, engine=None) -> dict:
    """The domain stage with its embeddings on Ray; rows written here, as classify-domains does
    (the zero-shot rule, when a question needs it, runs on `engine` in this process)."""
    with Store(db) as store:
        return classify_run_questions(store, config.domains, run_id, question_ids, progress,
                                      embedder=RayEmbedder(config.scaleout), engine=engine)


def filter_on_ray(db: str | Path, config: CurateConfig, run_id: str, index: NgramIndex | None = None,
                  progress: Progress | None = None) -> list[RuleCount]:
    """The curate flow's rule-filter stage on Ray: the cheap rules, then answer decontamination
    when configured (index: the benchmark index, built from the config when not given); the
    same counts as run_filters' two calls."""
    passes = [("filter", cheap_filters(config.filters, config.synthesis.custom_patterns()))]
    if config.decontamination.check_answers:
        passes.append(("decontam", [AnswerContamination(index or benchmark_index(config, None))]))
    token = _live.set(_Live(passes, progress or NoProgress()))
    try:
        return filters_flow.with_options(task_runner=ray_runner(config.scaleout))(
            str(db), run_id, config.scaleout)
    finally:
        _live.reset(token)


def verify_on_ray(db: str | Path, run_id: str, scaleout: ScaleoutConfig,
                  progress: Progress | None = None) -> VerifyReport:
    token = _live.set(_Live([], progress or NoProgress()))
    try:
        return verify_flow.with_options(task_runner=ray_runner(scaleout))(str(db), run_id, scaleout)
    finally:
        _live.reset(token)
