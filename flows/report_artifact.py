"""The quality report of a finished `curate` run, written beside the database and linked from the
flow run in the Prefect UI (a link artifact; the file opens in any browser, offline)."""

from __future__ import annotations

from pathlib import Path

from prefect.artifacts import create_link_artifact

from flows.run_context import ActiveRun, say


def report_path(db: str, run_id: str) -> Path:
    """reports/<database name>-<run id>.html in the database's folder (the shard folder holds
    only shard sets)."""
    db_path = Path(db).resolve()
    return db_path.parent / "reports" / f"{db_path.stem}-{run_id}.html"


def publish_report(run: ActiveRun) -> None:
    """Build the run's report and link it; a report that fails is said, never fails the run."""
    from pipeline.report.build import build_report
    from pipeline.store import Store

    path = report_path(run.db, run.run_id)
    try:
        with Store(run.db) as store:
            result = build_report(store.con, path, db_name=Path(run.db).name, run_id=run.run_id)
    except Exception as exc:  # the run's data is stored; the report can be rebuilt with `curate report`
        say(f"[report] not written: {type(exc).__name__}: {exc} (curate report --db {run.db} --run {run.run_id})")
        return
    run.counts["report"] = {"path": str(path), "seconds": result.seconds, "mb": round(result.bytes / 2**20, 2)}
    create_link_artifact(path.as_uri(), link_text=f"quality report of run {run.run_id}", key="curate-run-report",
                         description=f"curate report --db {run.db} --run {run.run_id}")
    say(f"[report] {path} ({result.bytes / 2**20:.1f} MB, {result.seconds:.1f} s)")
