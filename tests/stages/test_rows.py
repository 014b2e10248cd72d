"""The row shapes (schemas/rows.py) are the tables DuckDB made (pipeline/store.py): same
columns, same types. And a rule's input columns are what the sample view returns."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipeline.store import Store
from schemas import rows

_DUCKDB = {pl.String: "VARCHAR", pl.Int32: "INTEGER", pl.Int64: "BIGINT", pl.Float64: "DOUBLE",
           pl.Boolean: "BOOLEAN", pl.Datetime("us", "UTC"): "TIMESTAMP WITH TIME ZONE",
           pl.List(pl.String): "VARCHAR[]"}


@pytest.mark.parametrize("table, shape", [("samples", rows.SAMPLE), ("verdicts", rows.VERDICT),
                                          ("question_verdicts", rows.QUESTION_VERDICT),
                                          ("question_difficulty", rows.QUESTION_DIFFICULTY),
                                          ("rule_configs", rows.RULE_CONFIG), ("bad_cases", rows.BAD_CASE),
                                          ("trace_candidates", rows.TRACE_CANDIDATE),
                                          ("candidate_labels", rows.CANDIDATE_LABEL),
                                          ("rule_states", rows.RULE_STATE), ("preview_verdicts", rows.VERDICT),
                                          ("trajectories", rows.TRAJECTORY),
                                          ("trajectory_messages", rows.TRAJECTORY_MESSAGE),
                                          ("trajectory_verdicts", rows.TRAJECTORY_VERDICT)])
def test_each_shape_is_its_table(tmp_path: Path, table: str, shape: dict):
    with Store(tmp_path / "r.duckdb") as store:
        columns = dict(store.con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                         "WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall())
    assert columns == {c: "JSON" if c in rows.JSON_COLUMNS else _DUCKDB[t] for c, t in shape.items()}


def test_the_sample_view_returns_the_rule_input_columns(tmp_path: Path):
    with Store(tmp_path / "r.duckdb") as store:
        frame = store.frame(f"SELECT * FROM ({rows.SAMPLE_VIEW}) x LIMIT 0")
    assert frame.schema == pl.Schema(rows.RULE_INPUT)
