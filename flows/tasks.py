"""One Prefect task for every stage: `run_stage(run, name, **options)` runs the stage's
`run(ctx)` (pipeline/stage_list.py) as a task named after it and records its counts and notes.

The task writes to DuckDB itself: nothing for Prefect to cache or persist. It opens its own
connection from the path (Prefect keeps task parameters alive, and a live connection object
held past shutdown makes DuckDB's bindings report leaks). Stages that call a model retry on
engine errors only (flows/retries.py); the stages resume at row level, so a retry redoes what
is missing."""

from __future__ import annotations

import contextvars

from prefect import task
from prefect.cache_policies import NONE

from flows.retries import ENGINE_RETRIES
from flows.run_context import ActiveRun, say
from pipeline.progress import NoProgress, Progress
from pipeline.stage import RunState, StageContext, StageReport
from pipeline.stage_list import STAGES
from pipeline.store import Store

# The CLI's live progress bars (a live object, so not a task parameter).
progress_var: contextvars.ContextVar[Progress] = contextvars.ContextVar("progress", default=NoProgress())


# Each running run's state by id. Task parameters stay plain values: Prefect records them, and
# Ray pickles the calling task's context (its parameters included) into every chunk task.
_states: dict[str, RunState] = {}


def _run_here(name: str, db: str, run_id: str, options: dict) -> StageReport:
    with Store(db) as store:
        return STAGES[name].run(StageContext(store, _states[run_id], progress_var.get(), options))


@task(name="stage", task_run_name="{name}", cache_policy=NONE, persist_result=False)
def stage_task(name: str, db: str, run_id: str, options: dict) -> StageReport:
    # The body is a module-level function: Ray pickles this task (the context of chunk tasks
    # started inside it) and cloudpickle copies `stage_task`'s own function by value, with the
    # globals it uses, where a named module function is a reference.
    return _run_here(name, db, run_id, options)


def run_stage(run: ActiveRun, name: str, **options) -> StageReport:
    """Run one stage of `run` as a Prefect task; its counts go to run.counts[stage.key]."""
    stage = STAGES[name]
    retries = ENGINE_RETRIES if stage.uses_engine else {}
    _states[run.run_id] = run.state  # replaced by the same object on every stage of the run
    try:
        report = stage_task.with_options(name=name, **retries)(name, run.db, run.run_id, options)
    finally:
        _states.pop(run.run_id, None)
    run.counts[stage.key] = report.counts
    for note in report.notes:
        say(note)
    return report
