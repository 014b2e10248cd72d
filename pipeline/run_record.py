"""A row in `runs` for every flow run: started, then finished with its counts, or failed with
the error (the counts so far kept), whatever happens in between. The counts include what the
run sent to the model engines (counts["engine_calls"]: batches, requests, completions, loads)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.engines.factory import engine_calls, engine_calls_since
from pipeline.store import Store


@contextmanager
def recorded_run(db: str, config_json: dict, config_hash: str) -> Iterator[tuple[str, dict]]:
    """Yields (run_id, counts); fill counts in place. Call under the run lock (pipeline/run_lock.py):
    a run still marked running then is one that died, and is marked interrupted."""
    with Store(db) as store:
        store.close_interrupted_runs()
        run_id = store.start_run(config_json, config_hash)
    counts: dict = {"run_id": run_id}
    calls_before = engine_calls()
    try:
        yield run_id, counts
    except BaseException as exc:
        counts["engine_calls"] = engine_calls_since(calls_before)
        with Store(db) as store:
            store.finish_run(run_id, "failed", counts, error=f"{type(exc).__name__}: {exc}")
        raise
    counts["engine_calls"] = engine_calls_since(calls_before)
    with Store(db) as store:
        store.finish_run(run_id, "finished", counts)
