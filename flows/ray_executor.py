"""The Ray executor of a run (`scaleout.runner: ray`): verdict-pass chunks and the domain
stage's embeddings as Prefect tasks on Ray (prefect-ray's RayTaskRunner).

The verdict loop is pipeline/verdict_loop.py's, the same as inline: it runs in the flow's
process, reads chunks from DuckDB and stores what comes back; here each chunk is a task on a
Ray worker that checks it with the pure rules and writes a Parquet part, never opening the
DuckDB file (DuckDB takes one read-write process per file, and that process is the run's;
pipeline/scaleout/parts.py). Each pass runs as a subflow `<pass>-on-ray` whose task runner is
Ray.

Embeddings (the domain stage's kNN) are chunks of texts in, float32 vectors out through Ray's
object store; each worker loads the model once. They are not stored in DuckDB (the labelled
pools' go to the embedding cache file, in the flow's process), so there are no parts.

Ray: `scaleout.address` None starts a local cluster of `num_workers` CPUs (one for the whole
run: flows/run_context.py wraps the run in `ray_cluster`); "auto" joins the cluster
`ray start` made on this machine, "ray://host:10001" a remote one.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray
from prefect import flow, task
from prefect.cache_policies import NONE
from prefect_ray import RayTaskRunner

from pipeline.domain_classifier.embed import DIM, Embedder, check_texts, model_id
from pipeline.progress import NoProgress, Progress
from pipeline.runtime_env import curate_home
from pipeline.verdict_loop import ChunkJob, ChunkResult, check_chunk
from schemas.scaleout import ScaleoutConfig

# Chunk tasks return a small summary and write their own part: nothing for Prefect to cache or
# persist. A retry recomputes the chunk (a part is written whole or not at all).
_task = dict(cache_policy=NONE, persist_result=False, retries=1)
_IN_FLIGHT_PER_CPU = 2  # chunks queued per worker CPU: the next one is ready when a worker frees up
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


# --- tasks (run on Ray workers) ----------------------------------------------------------------------


@task(name="verdict-chunk", task_run_name="{stage}-chunk-{index}", **_task)
def verdict_chunk_task(index: int, stage: str, run_id: str, rows, part: str, rules) -> ChunkResult:
    return check_chunk(ChunkJob(index, stage, run_id, rows, part), rules)


_worker_embedder: Embedder | None = None  # per Ray worker process: the model is loaded by its first chunk


def _embedder_here() -> Embedder:
    global _worker_embedder
    if _worker_embedder is None:
        _worker_embedder = Embedder(threads=1)  # a task holds one Ray CPU
    return _worker_embedder


@task(name="embed-chunk", task_run_name="embed-chunk-{index}", **_task)
def embed_chunk_task(index: int, texts: list[str]) -> np.ndarray:
    return _embedder_here().embed(texts)


# --- subflows -----------------------------------------------------------------------------------------


@dataclass
class _Live:
    """What the subflows need that is not JSON (Prefect records flow parameters)."""
    executor: "RayExecutor"
    body: Callable[[Any], Any] | None = None  # a verdict pass's loop
    progress: Progress = field(default_factory=NoProgress)
    texts: list[str] = field(default_factory=list)  # to embed


_live: contextvars.ContextVar[_Live] = contextvars.ContextVar("ray_live")


def _current() -> _Live:
    # The flow functions reach the context variable only through this module-level function:
    # Ray pickles the flow (it travels in each task's Prefect context) and cloudpickle takes a
    # module-level function by reference, a ContextVar global not at all.
    return _live.get()


@flow(name="verdicts-on-ray", persist_result=False)
def verdicts_flow():
    live = _current()
    cpus = _cluster_cpus()
    live.executor.workers, live.executor.capacity = cpus, cpus * _IN_FLIGHT_PER_CPU
    return live.body(live.executor)


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


# --- the executor -------------------------------------------------------------------------------------


class RayExecutor:
    """pipeline/verdict_loop.py's Executor: chunk tasks on the run's Ray cluster."""

    writes_parts = True

    def __init__(self, scaleout: ScaleoutConfig):
        self.scaleout = scaleout
        self.capacity = self.workers = 1  # set from the cluster's CPUs when a pass starts

    def run(self, body, name: str = "verdicts"):
        token = _live.set(_Live(self, body))
        try:
            return verdicts_flow.with_options(name=f"{name}-on-ray", task_runner=ray_runner(self.scaleout))()
        finally:
            _live.reset(token)

    def share(self, rules):
        return ray.put(rules)  # once per pass, not once per chunk (the decontam index is MBs)

    def submit(self, job: ChunkJob, rules):
        return verdict_chunk_task.submit(job.index, job.stage, job.run_id, job.rows, job.part, rules)

    def wait(self, futures: list) -> tuple[list, list]:
        ready, _ = ray.wait([f.wrapped_future for f in futures], num_returns=1)
        ready = set(ready)
        return [f for f in futures if f.wrapped_future in ready], [f for f in futures if f.wrapped_future not in ready]

    def result(self, future) -> ChunkResult:
        return future.result()

    def embedder(self) -> "RayEmbedder":
        return RayEmbedder(self.scaleout)


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
        token = _live.set(_Live(RayExecutor(self.scaleout), progress=progress or NoProgress(), texts=list(texts)))
        try:
            return embeddings_flow.with_options(task_runner=ray_runner(self.scaleout))(len(texts))
        finally:
            _live.reset(token)
