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


@task(name="stage", task_run_name="{name}", cache_policy=NONE, persist_result=False)
def stage_task(name: str, db: str, run: RunState, options: dict) -> StageReport:
    with Store(db) as store:
        return STAGES[name].run(StageContext(store, run, progress_var.get(), options))


def run_stage(run: ActiveRun, name: str, **options) -> StageReport:
    """Run one stage of `run` as a Prefect task; its counts go to run.counts[stage.key]."""
    stage = STAGES[name]
    retries = ENGINE_RETRIES if stage.uses_engine else {}
    report = stage_task.with_options(name=name, **retries)(name, run.db, run.state, options)
    run.counts[stage.key] = report.counts
    for note in report.notes:
        say(note)
    return report
