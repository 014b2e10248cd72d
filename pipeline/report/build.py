"""Build the quality report of a store: run each query, draw each chart, write one HTML file."""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from pipeline.report import charts
from pipeline.report.html import Figure, Section, page, write
from pipeline.report.queries import QUERIES, fetch
from pipeline.report.scope import Scope, resolve

SECTIONS = [  # (title, figure keys, note)
    ("Funnel", ["funnel"], "Questions are counted once (the run that first read them); samples by the run "
     "that made them. <i>selected</i> and <i>exported</i> are the chosen export's."),
    ("Rules", ["rule_failures", "rule_reasons"], "Every verdict each run made (a run re-checks only what changed)."),
    ("Answer styles", ["style_requested_realized", "style_compliance", "style_alarm"],
     "The metrics of one run (the chosen run, else the export's, else the newest with style metrics): the "
     "alarm fires when one style's share exceeds the black tick."),
    ("Difficulty", ["difficulty_hist", "difficulty_levels", "difficulty_scatter"],
     "Newest version of each signal per question; the reference level comes from the pool (e.g. MATH levels)."),
    ("Domain mix", ["domain_mix"], "Target: the rebalance targets of the run shown."),
    ("Judges", ["judge_scores", "judge_costs", "judge_evals"], ""),
    ("Lengths", ["lengths"], "Kept: in kept_samples (every rule passed, no judge pending)."),
    ("Agentic traces", ["agentic_outcomes", "agentic_pass_rate", "agentic_rule_failures",
                        "agentic_perturbation_alarm", "agentic_perturbation_values"],
     "Tool-use trajectories (issue 16) by the run that rolled them out, their verdicts by the run that made them "
     "(outcome check, trace rules, trajectory judges); the perturbation axes of one run (the chosen run, else the "
     "export's, else the newest with trajectories): the alarm fires when the dominant value's share exceeds the "
     "black tick (alarm_share, or what the config's own draw explains)."),
]
# A section whose figures all have no rows says this instead of its note.
EMPTY_NOTES = {
    "Agentic traces": "No agentic traces in this scope: the agentic stage is off unless <code>agentic.enabled</code> "
                      "(configs/agentic.yaml).",
}


# Views several figures read, each computed once per build (report_samples is one pass over every
# latest verdict; report_difficulty a window over every difficulty row).
SHARED = ("report_samples", "report_difficulty")


@contextmanager
def _shared_once(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Each SHARED view computed once into a temporary table of the same name, which DuckDB
    resolves before the view (temp objects come first in its search path) for this connection,
    until dropped. The rows are the view's, taken at the start of the build."""
    try:
        for view in SHARED:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {view} AS SELECT * FROM {view}")
        yield
    finally:
        for view in SHARED:
            con.execute(f"DROP TABLE IF EXISTS temp.{view}")


@dataclass
class ReportResult:
    path: Path
    bytes: int
    seconds: float
    scope: Scope
    figures: dict[str, Figure] = field(default_factory=dict)


def build_report(con: duckdb.DuckDBPyConnection, out: Path, db_name: str = "",
                 run_id: str | None = None, export_id: str | None = None) -> ReportResult:
    """Write the report of the store behind `con` (opened with pipeline.store.Store, so the
    report_* views exist) to `out`. Raises scope.ScopeError for an unknown run or export."""
    started = time.perf_counter()
    scope = resolve(con, run_id, export_id)
    figures: dict[str, Figure] = {}
    with _shared_once(con):
        for query in QUERIES:
            sql, frame = fetch(con, query, scope)
            spec = charts.spec(query.key, frame) if frame.height else None
            figures[query.key] = Figure(query.key, query.title, query.view, sql, frame.height, spec)
    sections = []
    for title, keys, note in SECTIONS:
        shown = [figures[k] for k in keys]
        if title in EMPTY_NOTES and not any(f.rows for f in shown):
            note = EMPTY_NOTES[title]
        sections.append(Section(title, shown, note))
    totals = con.sql("SELECT (SELECT count(*) FROM questions), (SELECT count(*) FROM samples), "
                     "(SELECT count(*) FROM runs)").fetchall()[0]
    meta = (f"{html.escape(db_name)} · {html.escape(scope.describe())} · {totals[0]:,} questions, "
            f"{totals[1]:,} samples, {totals[2]} run{'' if totals[2] == 1 else 's'} in the store · made "
            f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by <code>curate report</code>")
    size = write(Path(out), page("Curation quality report", meta, sections))
    return ReportResult(Path(out), size, round(time.perf_counter() - started, 2), scope, figures)
