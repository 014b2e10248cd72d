"""A row in `runs` for every flow run: started, then finished with its counts, or failed with
the error (the counts so far kept), whatever happens in between."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.store import Store


@contextmanager
def recorded_run(db: str, config_json: dict, config_hash: str) -> Iterator[tuple[str, dict]]:
    """Yields (run_id, counts); fill counts in place."""
    with Store(db) as store:
        run_id = store.start_run(config_json, config_hash)
    counts: dict = {"run_id": run_id}
    try:
        yield run_id, counts
    except BaseException as exc:
        with Store(db) as store:
            store.finish_run(run_id, "failed", counts, error=f"{type(exc).__name__}: {exc}")
        raise
    with Store(db) as store:
        store.finish_run(run_id, "finished", counts)
