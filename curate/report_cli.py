"""`curate report`: the store's quality report as one self-contained HTML file (pipeline/report/)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from curate.loop_cli import _existing, guard

console = Console(stderr=True, soft_wrap=True)


@guard
def report(
    db: Path = typer.Option(Path("curate.duckdb"), "--db", help="DuckDB file."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write."),
    run: Optional[str] = typer.Option(None, "--run", help="Only this run's questions, samples and verdicts (and its newest export)."),
    export: Optional[str] = typer.Option(None, "--export", help="Show this export's selection (default: the newest export)."),
) -> None:
    """The store's quality report as one HTML file that opens offline.

    Funnel, rule failures, answer styles, difficulty, domain mix, judges and lengths; each plot
    names the SQL view it reads and the query behind it."""
    from pipeline.report.build import build_report
    from pipeline.store import Store

    with Store(_existing(db)) as store:  # read-write open: an older store gets the report_* views
        result = build_report(store.con, out, db_name=db.name, run_id=run, export_id=export)
    empty = [f.key for f in result.figures.values() if f.spec is None]
    console.print(f"report of {db} ({result.scope.describe()}) -> {out}: {result.bytes / 2**20:.1f} MB, "
                  f"{result.seconds:.1f} s" + (f"; no rows for: {', '.join(empty)}" if empty else ""),
                  highlight=False, markup=False)
