"""What a report covers: every run, or one run; and the export whose selection it shows."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


class ScopeError(ValueError):
    """A run or export id the store does not hold."""


@dataclass(frozen=True)
class Scope:
    run_id: str | None      # None: every run
    export_id: str | None   # the export shown (selected / exported); None: the store has none
    metrics_run: str | None  # preferred run for per-run metrics (styles, targets): the run, the export's, the newest

    def rows(self) -> tuple[str, list]:
        """WHERE clause and parameters for a report_* view with run_id and export_id columns:
        the scope's run rows, and the chosen export's rows."""
        run = "run_id = ?" if self.run_id else "true"
        params = [self.run_id] if self.run_id else []
        return f"((export_id IS NULL AND {run}) OR export_id = ?)", [*params, self.export_id]

    def runs(self) -> tuple[str, list]:
        """WHERE clause and parameters for a view with a run_id column only."""
        return ("run_id = ?", [self.run_id]) if self.run_id else ("true", [])

    def describe(self) -> str:
        runs = f"run {self.run_id}" if self.run_id else "all runs"
        return f"{runs}; export {self.export_id or '(none yet)'}"


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list):
    rows = (con.sql(sql, params=params) if params else con.sql(sql)).fetchall()
    return rows[0][0] if rows else None


def resolve(con: duckdb.DuckDBPyConnection, run_id: str | None = None, export_id: str | None = None) -> Scope:
    """--run ID: that run, and the newest export it wrote; --export ID: every run, and that
    export (its run's metrics); neither: every run and the newest export."""
    if run_id and not _one(con, "SELECT count(*) FROM runs WHERE run_id = ?", [run_id]):
        newest = _one(con, "SELECT string_agg(run_id, ', ' ORDER BY started_at DESC) FROM "
                           "(SELECT * FROM runs ORDER BY started_at DESC LIMIT 5)", [])
        raise ScopeError(f"--run {run_id}: no such run in the store (newest: {newest or 'none'})")
    if export_id:
        export_run = _one(con, "SELECT run_id FROM exports WHERE export_id = ?", [export_id])
        if export_run is None:
            newest = _one(con, "SELECT string_agg(export_id, ', ' ORDER BY created_at DESC) FROM "
                               "(SELECT * FROM exports ORDER BY created_at DESC LIMIT 5)", [])
            raise ScopeError(f"--export {export_id}: no such export in the store (newest: {newest or 'none'})")
        return Scope(run_id, export_id, run_id or export_run)
    where, params = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
    export_id = _one(con, f"SELECT export_id FROM exports {where} ORDER BY created_at DESC LIMIT 1", params)
    metrics_run = run_id or (_one(con, "SELECT run_id FROM exports WHERE export_id = ?", [export_id]) if export_id
                             else _one(con, "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1", []))
    return Scope(run_id, export_id, metrics_run)
