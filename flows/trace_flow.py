"""The `trace-cases` Prefect flow: trace bad cases to the stored samples behind them, one task per
case (pipeline/misalignment/trace). The tasks run one after another: DuckDB has one writer, and
the indexes (BM25, embeddings, the benchmark index) are built once and shared by every case."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NONE

from pipeline.config_loading import load_run_config
from pipeline.misalignment.trace import trace_case
from pipeline.run_lock import run_lock
from pipeline.store import Store
from schemas.bad_case import TRACE_METHODS


@task(name="trace-case", task_run_name="trace-{case_id}", cache_policy=NONE, persist_result=False)
def trace_task(db: str, case_id: str, methods: list[str], top: int, config_path: str | None) -> dict:
    with Store(db) as store:
        found = trace_case(store, case_id, methods=tuple(methods), top=top, config=load_run_config(config_path))
    return {"trace_id": found["trace_id"][0] if found.height else None, "candidates": found.height,
            "top": found["sample_id"].head(10).to_list()}


@flow(name="trace-cases", persist_result=False)
def trace_cases(db: str = "curate.duckdb", case_ids: list[str] | None = None,
                methods: list[str] = list(TRACE_METHODS), top: int = 50, config_path: str | None = None) -> dict:
    """Trace the given cases (default: every stored case); returns case_id -> trace summary."""
    with run_lock(db):
        if case_ids is None:
            with Store(db, read_only=True) as store:
                case_ids = store.frame("SELECT case_id FROM bad_cases ORDER BY created_at, case_id")["case_id"].to_list()
        return {case_id: trace_task(db, case_id, list(methods), top, config_path) for case_id in case_ids}
