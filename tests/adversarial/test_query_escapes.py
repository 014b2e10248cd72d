"""`curate query` stays inside the store: every statement of the corpus (reading other files,
ATTACH, COPY, EXPORT/IMPORT, INSTALL/LOAD, SET, PRAGMA, writes, multi-statement and comment
tricks) is refused with a clear message, and the database file is byte-for-byte unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from curate.cli import app
from pipeline.read_only_query import QueryRefused, run_query
from pipeline.store import Store
from tests.stages.test_store import question_frame, sample_frame

CORPUS = [json.loads(line) for line in (Path(__file__).parent / "corpora" / "query_escapes.jsonl").open()]
runner = CliRunner()


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("query")
    db = tmp / "store.duckdb"
    with Store(db) as store:
        store.insert("questions", question_frame(("q1", "math")))
        store.insert("samples", sample_frame(("s1", "q1")))
    with Store(tmp / "other.duckdb"):
        pass
    (tmp / "secret.txt").write_text("do not read me\n")
    pl.DataFrame({"a": [1]}).write_parquet(tmp / "x.parquet")
    return {"db": str(db), "dir": str(tmp), "secret": str(tmp / "secret.txt")}


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 25


@pytest.mark.parametrize("case", CORPUS, ids=[c["why"] for c in CORPUS])
def test_every_escape_is_refused_and_the_file_unchanged(place, case):
    sql = case["sql"].format(**place)
    before = _digest(place["db"])
    result = runner.invoke(app, ["query", "--db", place["db"], sql])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    assert "refused" in result.output or "error" in result.output
    assert "do not read me" not in result.output
    assert _digest(place["db"]) == before
    assert not (Path(place["dir"]) / "dump").exists()


def test_a_select_still_works_and_is_bounded(place):
    frame, truncated = run_query(place["db"], "SELECT * FROM range(50)", max_rows=10)
    assert frame.height == 10 and truncated
    frame, truncated = run_query(place["db"], "-- the samples\nSELECT count(*) AS n FROM samples;")
    assert frame["n"].to_list() == [1] and not truncated
    with pytest.raises(QueryRefused, match="longer than 0.5 s"):
        run_query(place["db"], "SELECT count(*) FROM range(10000000000) a", timeout_s=0.5)


@pytest.mark.parametrize("args, message", [
    (["query", ""], "no SQL given"),
    (["query", "/* nothing */"], "no statement"),
    (["query", "--db", "{dir}", "SELECT 1"], "is a directory"),
    (["query", "--db", "{secret}", "SELECT 1"], "not a DuckDB database"),
    (["query", "--db", "{dir}/missing.duckdb", "SELECT 1"], "no such database"),
])
def test_bad_arguments_are_one_clear_line(place, args, message):
    if "--db" not in args:
        args = ["query", "--db", place["db"], *args[1:]]
    result = runner.invoke(app, [a.format(**place) for a in args])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
