"""One curate run as the stage flows see it: the run lock, the `runs` row, the counts artifact.

A stage flow started on its own (`filter_flow(...)`) is a run: it takes the database's run lock,
records a row in `runs` and leaves its counts as a Prefect markdown artifact. Started inside the
`curate` flow (as a subflow) it joins that run instead: same lock, same run id, same config and
counts, and the one artifact at the end is the curate run's."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import MissingContextError
from prefect.runtime import flow_run

from flows.params import StageParams
from pipeline.run_lock import run_lock
from pipeline.stage import RunState
from pipeline.verdict_loop import INLINE
from pipeline.run_record import recorded_run
from pipeline.run_report import counts_markdown
from schemas.config import CurateConfig

# The CLI's live display of messages (None: the run log only). Flow parameters must stay JSON,
# so live objects such as this travel in context variables, as does the active run.
say_var: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("say", default=None)


@dataclass
class ActiveRun:
    db: str
    counts: dict  # filled in place by each stage; stored in `runs` whether the run finishes or fails
    state: RunState  # what the run's stages share (pipeline/stage.py): id, config, questions, executor
    flow_name: str = "curate"

    @property
    def run_id(self) -> str:
        return self.state.run_id

    @property
    def config(self) -> CurateConfig:
        return self.state.config


def _executor(config: CurateConfig):
    """Chosen once per run: chunks of verdict passes (and embeddings) inline or on Ray."""
    if config.scaleout.runner == "ray":
        from flows.ray_executor import RayExecutor

        return RayExecutor(config.scaleout)
    return INLINE


@contextmanager
def _cluster(config: CurateConfig) -> Iterator[None]:
    """On Ray, one cluster for the whole run (its passes share the warm workers)."""
    if config.scaleout.runner != "ray":
        yield
        return
    from flows.ray_executor import ray_cluster

    with ray_cluster(config.scaleout):
        yield


_active: contextvars.ContextVar[ActiveRun | None] = contextvars.ContextVar("active_run", default=None)


def say(message: str) -> None:
    """A message for the run log (Prefect UI) and, under the CLI, the terminal."""
    try:
        get_run_logger().info(message)
    except MissingContextError:
        pass
    display = say_var.get()
    if display is not None:
        display(message)


def run_name() -> str:
    """Flow run names: the database and the start time (UTC), e.g. `curate.duckdb 2026-12-01 03:05:19`."""
    params = flow_run.parameters.get("params")
    db = params.get("db") if isinstance(params, dict) else getattr(params, "db", None)
    return f"{Path(db or 'curate.duckdb').name} {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S}"


@contextmanager
def stage_run(flow_name: str, params: StageParams, load_config: Callable[[], CurateConfig]) -> Iterator[ActiveRun]:
    """Join the curate run this flow is part of, or be a run of its own (lock, record, artifact)."""
    parent = _active.get()
    if parent is not None:
        if Path(params.db).resolve() != Path(parent.db).resolve():
            raise ValueError(f"params.db: {params.db} is not the database of run {parent.run_id} ({parent.db})")
        started = time.monotonic()
        try:
            yield parent
        finally:  # where a run's time goes, per stage flow (counts["seconds"])
            parent.counts.setdefault("seconds", {})[flow_name] = round(time.monotonic() - started, 1)
        return
    config = load_config()  # a bad config fails here, before the lock or a `runs` row
    with run_lock(params.db):
        run_config = {"command": flow_name, "prefect_flow_run_id": flow_run.id, **config.model_dump(mode="json")}
        run: ActiveRun | None = None
        error: BaseException | None = None
        try:
            with recorded_run(params.db, run_config, config.config_hash()) as (run_id, counts):
                state = RunState(run_id, config, executor=_executor(config), say=say)
                run = ActiveRun(params.db, counts, state, flow_name=flow_name)
                token = _active.set(run)
                try:
                    with _cluster(config):
                        yield run
                finally:
                    _active.reset(token)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if run is not None:
                try:
                    _publish_counts(run, error)
                except Exception as exc:  # never hide the run's own error behind the artifact's
                    if error is None:
                        raise
                    say(f"counts artifact not written: {type(exc).__name__}: {exc}")


def _publish_counts(run: ActiveRun, error: BaseException | None) -> None:
    """The counts per stage on the flow run in the Prefect UI (key: one history per flow)."""
    counts = dict(run.counts)
    if error is not None:
        counts["status"] = f"failed: {type(error).__name__}: {error}"
    markdown = counts_markdown(counts).replace("# curate run", f"# {run.flow_name} run", 1)
    create_markdown_artifact(markdown, key=f"{run.flow_name}-run-counts",
                             description=f"counts per stage, database {Path(run.db).name}")
