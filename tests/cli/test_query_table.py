"""`curate query`'s table output fits the terminal (curate/table_output.py); csv and json are
as they were."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from curate.cli import app
from pipeline.read_only_query import run_query
from pipeline.store import Store
from tests.stages.test_store import question_frame, sample_frame

runner = CliRunner()

# Twelve columns as style_summary has: too wide for 80 characters even cut to their headers.
WIDE = ("SELECT '20261207T041629-9ca5ab' AS run_id, 'synthesized' AS scope, 'logic' AS domain, 24 AS n_samples, "
        "3 AS n_unknown, 3 AS n_styles, 0.894674798246399 AS entropy, 'terse_final' AS dominant_style, "
        "0.523809523809524 AS dominant_share, true AS alarm, 0.5 AS alarm_share, 0.75 AS compliance "
        "FROM range(2)")
NARROW = ("SELECT 'q' || range AS id, 'math' AS domain, repeat('a long reason ', 20) || 'end' AS reason, "
          "'line one' || chr(10) || 'line two' AS text FROM range(3)")


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("query") / "store.duckdb"
    with Store(path) as store:
        store.insert("questions", question_frame(("q1", "math")))
        store.insert("samples", sample_frame(("s1", "q1")))
    return str(path)


def _query(db: str, sql: str, columns: int, *fmt: str):
    result = runner.invoke(app, ["query", "--db", db, *fmt, sql], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result


def test_a_wide_row_becomes_a_block_of_lines_within_80_columns(db):
    out = _query(db, WIDE, 80).stdout
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert [line for line in lines if line.startswith("── row ")] == ["── row 1 ".ljust(80, "─"), "── row 2 ".ljust(80, "─")]
    assert "run_id          20261207T041629-9ca5ab" in lines  # whole values, one per line
    assert "dominant_share  0.5238" in lines and "alarm           true" in lines


def test_the_same_rows_are_a_table_in_a_wide_terminal(db):
    lines = _query(db, WIDE, 200).stdout.splitlines()
    assert max(len(line) for line in lines) <= 200 and not any(line.startswith("── row") for line in lines)
    header = next(line for line in lines if "run_id" in line)
    assert all(name in header for name in ("run_id", "dominant_style", "dominant_share", "compliance"))
    assert sum("20261207T041629-9ca5ab" in line for line in lines) == 2  # one line per row, nothing cut


def test_a_narrow_table_cuts_long_cells_and_keeps_rows_on_one_line(db):
    lines = _query(db, NARROW, 80).stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "reason" in line)
    assert all(name in header for name in ("id", "domain", "reason", "text"))
    rows = [line for line in lines if line.startswith("│ q")]
    assert len(rows) == 3 and all("a long reason" in r and "…" in r for r in rows)
    assert all("line one⏎line two" in r for r in rows)  # a newline does not break the row


def test_csv_and_json_are_unchanged(db):
    frame, _ = run_query(db, NARROW)
    assert _query(db, NARROW, 80, "--format", "csv").stdout == frame.write_csv()
    as_json = json.loads(_query(db, NARROW, 80, "--format", "json").stdout)
    assert as_json == frame.to_dicts() and as_json[0]["text"] == "line one\nline two"
    assert pl.DataFrame(as_json).equals(frame)
