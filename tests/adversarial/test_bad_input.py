"""Bad pool input never crashes a run and loses nothing: each bad row is quarantined with file,
line and field, the good rows around it are stored, and a file that cannot be read at all is one
clear error naming it (the other pools still read; a run with no readable pool stops before it
starts, one line per pool, no traceback). Every bad file is built here, in tmp_path."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from curate.cli import app
from pipeline.pools import pool_problem, read_pool
from pipeline.stage import RunState, StageContext
from pipeline.stages import ingest
from pipeline.store import Store
from schemas.config import CurateConfig, FieldMap, PoolConfig

GOOD = json.dumps({"question": "What is 2 + 2?", "answer": "4", "domain": "math"})
GOOD_TOO = json.dumps({"question": "Name a prime.", "answer": "7", "domain": "math"})


def _pool(path: Path, **kw) -> PoolConfig:
    return PoolConfig(path=str(path), **kw)


def _sandwich(tmp_path: Path, bad: bytes, name: str = "pool.jsonl") -> Path:
    """A good row, the bad line (line 2), a good row."""
    path = tmp_path / name
    path.write_bytes(GOOD.encode() + b"\n" + bad + b"\n" + GOOD_TOO.encode() + b"\n")
    return path


# --- bad rows: quarantined with line and field, the rows around them read ----------------------

BAD_LINES = {
    # kind: (the line, the field quarantined, words of the reason)
    "invalid JSON": (b'{"question": "broken', None, "invalid JSON"),
    "not UTF-8": ('{"question": "caf\u00e9?", "answer": "1"}'.encode("latin-1"), "encoding", "not UTF-8: byte 0xe9"),
    "lone surrogate": (b'{"question": "x \\ud800 y", "answer": "1"}', "question", "lone surrogate"),
    "deep nesting": (b'{"question": "q", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None, "nested too deeply"),
    "5,000-digit integer": (b'{"question": "q", "answer": ' + b"9" * 5000 + b"}", "answer", "5000 digits"),
    "5 MB question": (json.dumps({"question": "x" * 5_000_000, "answer": "1"}).encode(), "question", "max_question_chars"),
    "missing question": (b'{"answer": "1"}', "question", "missing required field"),
    "null question": (b'{"question": null, "answer": "1"}', "question", "missing required field"),
    "empty question": (b'{"question": "   ", "answer": "1"}', "question", "is empty"),
    "question as a number NaN": (b'{"question": NaN}', "question", "not a finite number"),
    "answer as an object": (b'{"question": "q", "answer": {"a": 1}}', "answer", "must be a string or a number"),
    "answer as a list of objects": (b'{"question": "q", "answer": [{"a": 1}]}', "answer", "must be text"),
    "answer NaN": (b'{"question": "q", "answer": NaN}', "answer", "not a finite number"),
    "answer Infinity": (b'{"question": "q", "answer": Infinity}', "answer", "not a finite number"),
    "answer 1e400 (infinite)": (b'{"question": "q", "answer": 1e400}', "answer", "not a finite number"),
    "answer list holding NaN": (b'{"question": "q", "answer": [1, NaN]}', "answer", "not a finite number"),
    "duplicate key": (b'{"question": "a", "answer": "1", "question": "b"}', "question", "duplicate key"),
    "duplicate nested key": (b'{"question": "a", "meta": {"k": 1, "k": 2}}', "k", "duplicate key"),
    "numeric domain": (b'{"question": "q", "answer": "1", "domain": 3}', "domain", "must name a domain"),
    "unknown domain": (b'{"question": "q", "domain": "astrology"}', "domain", "not one of"),
    "a list, not an object": (b"[1, 2]", None, "expected a JSON object"),
    "a bare string": (b'"just text"', None, "expected a JSON object"),
    "two objects on a line": (b'{"question": "a"} {"question": "b"}', None, "extra data"),
}


@pytest.mark.parametrize("kind", BAD_LINES)
def test_a_bad_row_is_quarantined_and_its_neighbours_read(tmp_path, kind):
    line, field, reason = BAD_LINES[kind]
    path = _sandwich(tmp_path, line)
    result = read_pool(_pool(path))
    assert [q.text for q in result.questions] == ["What is 2 + 2?", "Name a prime."]
    assert [q.pool_line for q in result.questions] == [1, 3]
    [row] = result.quarantine
    assert (row.pool_path, row.line, row.field) == (str(path), 2, field)
    assert reason in row.error, row.error
    assert row.raw is None or len(row.raw) <= 500
    assert result.error is None


def test_booleans_stay_references_as_theoremqa_needs(tmp_path):
    """TheoremQA's 115 True/False answers are JSON booleans: kept, as "True"/"False"."""
    path = _sandwich(tmp_path, b'{"question": "Is 7 prime?", "answer": true}')
    assert [q.reference_answer for q in read_pool(_pool(path)).questions] == ["4", "True", "7"]


def test_a_long_question_limit_is_per_pool(tmp_path):
    path = _sandwich(tmp_path, json.dumps({"question": "x" * 30_000}).encode())
    assert len(read_pool(_pool(path)).questions) == 2
    assert len(read_pool(_pool(path, max_question_chars=40_000)).questions) == 3


def test_wrong_types_in_mapped_fields(tmp_path):
    rows = [{"q": "A?", "sub": {"x": 1}}, {"q": "B?", "lvl": float("nan")}, {"q": "C?", "tests": "assert f()"},
            {"q": "D?", "tests": ["assert \ud800"]}, {"q": "E?", "sub": "algebra", "lvl": 3}]
    path = tmp_path / "pool.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = read_pool(_pool(path, fields=FieldMap(question="q", subdomain="sub", level="lvl", tests="tests"),
                             level_max=5))
    assert [(q.text, q.subdomain, q.level) for q in result.questions] == [("E?", "algebra", 0.6)]
    assert [(r.line, r.field) for r in result.quarantine] == [(1, "sub"), (2, "lvl"), (3, "tests"), (4, "tests")]


# --- whole files: accepted forms --------------------------------------------------------------


def test_a_utf8_bom_is_accepted(tmp_path):
    for name in ("pool.jsonl", "pool.json"):
        path = tmp_path / name
        body = GOOD + "\n" + GOOD_TOO + "\n" if name.endswith("l") else f"[{GOOD},\n{GOOD_TOO}]"
        path.write_bytes(b"\xef\xbb\xbf" + body.encode())
        result = read_pool(_pool(path))
        assert (len(result.questions), result.quarantine) == (2, []), name


def test_gzipped_jsonl_and_json_are_read(tmp_path):
    (tmp_path / "pool.jsonl.gz").write_bytes(gzip.compress(f"{GOOD}\nnot json\n{GOOD_TOO}\n".encode()))
    (tmp_path / "pool.json.gz").write_bytes(gzip.compress(f"[{GOOD},\n{GOOD_TOO}]".encode()))
    lines = read_pool(_pool(tmp_path / "pool.jsonl.gz"))
    assert [q.pool_line for q in lines.questions] == [1, 3] and [r.line for r in lines.quarantine] == [2]
    assert len(read_pool(_pool(tmp_path / "pool.json.gz")).questions) == 2


def test_a_json_array_in_a_jsonl_file_is_read_as_rows(tmp_path):
    path = tmp_path / "pool.jsonl"
    path.write_text(f"[\n{GOOD},\n{{\"answer\": \"1\"}},\n{GOOD_TOO}\n]\n")
    result = read_pool(_pool(path))
    assert [q.pool_line for q in result.questions] == [2, 4]
    assert [(r.line, r.field) for r in result.quarantine] == [(3, "question")]
    assert any("a JSON array, not JSON lines" in n for n in result.notes)


def test_jsonl_whose_first_row_is_an_array_stays_jsonl(tmp_path):
    path = tmp_path / "first.jsonl"
    path.write_text(f"[1, 2]\n{GOOD}\n{GOOD_TOO}\n")
    result = read_pool(_pool(path))
    assert [q.pool_line for q in result.questions] == [2, 3]
    assert [(r.line, r.field) for r in result.quarantine] == [(1, None)] and result.notes == []


def test_json_lines_named_json_are_read_as_lines(tmp_path):
    path = tmp_path / "pool.json"
    path.write_text(f"{GOOD}\n{{\"answer\": 1}}\n{GOOD_TOO}\n")
    result = read_pool(_pool(path))
    assert [q.pool_line for q in result.questions] == [1, 3]
    assert [(r.line, r.field) for r in result.quarantine] == [(2, "question")]
    assert result.notes == [f"{path}: JSON lines, not one JSON document; read as lines"]


def test_a_json_document_keeps_its_good_records(tmp_path):
    """Non-UTF-8 bytes and duplicate keys in one record of a .json file cost that record only."""
    path = tmp_path / "pool.json"
    path.write_bytes(b'[\n{"question": "caf\xe9?"},\n' + GOOD.encode()
                     + b',\n{"question": "a", "question": "b"},\n' + GOOD_TOO.encode() + b"\n]")
    result = read_pool(_pool(path))
    assert [q.pool_line for q in result.questions] == [3, 5]
    assert [(r.line, r.field) for r in result.quarantine] == [(2, "question"), (4, "question")]
    assert "\\udce9" in result.quarantine[0].error  # the bad byte, shown, storable


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"[]"])
def test_an_empty_file_says_so(tmp_path, content):
    path = tmp_path / "pool.jsonl"
    path.write_bytes(content)
    result = read_pool(_pool(path))
    assert (result.questions, result.quarantine, result.error) == ([], [], None)
    assert result.notes[-1] == f"{path}: no rows in the file"


def test_a_file_name_that_is_not_utf8_is_stored_escaped(tmp_path):
    path = tmp_path / b"caf\xe9.jsonl".decode("utf-8", "surrogateescape")  # how Linux hands Python such a name
    path.write_text(GOOD + "\n")
    [q] = read_pool(_pool(path)).questions
    assert q.source == "caf\\udce9.jsonl" and q.pool_path.endswith("caf\\udce9.jsonl")


# --- whole files that cannot be read: one error naming the file ---------------------------------


def _unreadable(tmp_path: Path) -> dict[str, tuple[Path, dict, str]]:
    """kind: (path, pool options, words of the error)."""
    folder = tmp_path / "not_a_dataset"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    (tmp_path / "garbage.jsonl.gz").write_bytes(b"this is not gzip\n")
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 not really parquet")
    pl.DataFrame({"prompt": ["Q?"], "solution": ["1"]}).write_parquet(tmp_path / "schema.parquet")
    (tmp_path / "broken.json").write_text('[{"question": "a"},\n{"question": ')
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "pool.csv").write_text("question,answer\nQ,1\n")
    (tmp_path / "obj.json").write_text('{"question": "a"}')
    return {
        "missing path": (tmp_path / "nope.jsonl", {}, "file not found"),
        "a folder that is not a dataset": (folder, {}, "not a Hugging Face datasets folder"),
        "not gzip": (tmp_path / "garbage.jsonl.gz", {}, "Not a gzipped file"),
        "corrupt Parquet": (tmp_path / "corrupt.parquet", {}, "not a readable Parquet file"),
        "Parquet with the wrong schema": (tmp_path / "schema.parquet", {}, "no column 'question' for fields.question (columns: prompt, solution)"),
        "JSON document that does not parse": (tmp_path / "broken.json", {}, "invalid JSON"),
        "JSON document nested too deeply": (tmp_path / "deep.json", {}, "nested too deeply"),
        "unsupported format": (tmp_path / "pool.csv", {}, "unsupported pool format '.csv'"),
        "JSON object, not records": (tmp_path / "obj.json", {}, "expected a list of records"),
    }


def test_each_unreadable_file_is_one_error_naming_it(tmp_path):
    for kind, (path, options, words) in _unreadable(tmp_path).items():
        result = read_pool(_pool(path, **options))
        assert result.questions == [], kind
        assert result.error and result.error.startswith(f"{path}: ") and words in result.error, (kind, result.error)
        [row] = result.quarantine
        assert row.pool_path == str(path) and words in row.error, kind


def test_unreadable_files_are_seen_before_reading_rows(tmp_path):
    """pool_problem (the CLI's check before a run) sees all but what needs the whole document parsed."""
    late = {"JSON document that does not parse", "JSON document nested too deeply", "JSON object, not records"}
    for kind, (path, options, words) in _unreadable(tmp_path).items():
        problem = pool_problem(_pool(path, **options))
        assert (problem is None) if kind in late else (words in problem), (kind, problem)
    assert pool_problem(_pool(_sandwich(tmp_path, b"{"))) is None


def test_a_gzip_file_cut_short_keeps_the_rows_before_the_cut(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    rows = "".join(json.dumps({"question": f"Q{i}?"}) + "\n" for i in range(20_000))
    path.write_bytes(gzip.compress(rows.encode())[:-5000])
    result = read_pool(_pool(path))
    assert 0 < len(result.questions) < 20_000
    assert result.error.startswith(f"{path}: cannot read past line ")
    assert [r.line for r in result.quarantine] == [len(result.questions) + 1]


def test_an_hf_folder_with_the_wrong_schema_is_one_error(tmp_path):
    import datasets

    datasets.Dataset.from_list([{"prompt": "Q?"}]).save_to_disk(str(tmp_path / "hf"))
    result = read_pool(_pool(tmp_path / "hf"))
    assert result.questions == [] and "no column 'question'" in result.error


# --- the ingest stage: stores the good rows and the quarantine; other pools proceed -------------


def test_ingest_stores_good_rows_and_quarantine_and_reads_on_past_unreadable_pools(tmp_path):
    mixed = _sandwich(tmp_path, b'{"question": "q", "answer": NaN}')
    (tmp_path / "empty.jsonl").write_text("")
    config = CurateConfig(pools=[_pool(tmp_path / "nope.jsonl"), _pool(mixed), _pool(tmp_path / "empty.jsonl")])
    with Store(tmp_path / "c.duckdb") as store:
        report = ingest.run(StageContext(store, RunState("r1", config)))
        stored = store.con.execute("SELECT count(*) FROM questions").fetchone()[0]
        rows = store.con.execute("SELECT pool_path, line, field FROM quarantine ORDER BY line NULLS FIRST").fetchall()
    assert stored == 2
    assert rows == [(str(tmp_path / "nope.jsonl"), None, None), (str(mixed), 2, "answer")]
    assert report.counts == {"read": 2, "new": 2, "quarantined": 2, "unreadable_pools": 1}
    assert f"[error] cannot read {tmp_path / 'nope.jsonl'}: file not found" in report.notes
    assert f"[note] {tmp_path / 'empty.jsonl'}: no rows in the file" in report.notes
    assert f"[quarantine] {mixed}:2: field 'answer' is nan, not a finite number" in report.notes
    assert not any(n.startswith("[quarantine]") and "nope.jsonl" in n for n in report.notes)  # said once, as [error]
    assert report.notes[-1] == "2 questions read (2 new, 2 quarantined, 1 pool file unreadable)"


# --- the CLI: no readable pool is one line per pool and exit 2, before any run starts ------------


def test_curate_run_with_no_readable_pool_is_one_clear_line_per_pool(tmp_path):
    cases = _unreadable(tmp_path)
    early = [p for k, (p, _, _) in cases.items() if k in ("missing path", "a folder that is not a dataset",
                                                         "not gzip", "corrupt Parquet", "Parquet with the wrong schema")]
    args = ["run", "--db", str(tmp_path / "c.duckdb"), "--out", str(tmp_path / "out"), "--limit", "1"]
    for path in early:
        args += ["--questions", str(path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == len(early) and all(line.startswith("error: cannot read ") for line in lines), result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "c.duckdb").exists()  # refused before a run (or its database) existed


# --- curate query: bad arguments are one line (more in test_query_escapes.py) ---------------------


@pytest.mark.parametrize("args, message", [
    (["query", "--db", "{db}", ""], "no SQL given"),
    (["query", "--db", "{dir}", "SELECT 1"], "is a directory"),
    (["query", "--db", "{junk}", "SELECT 1"], "not a DuckDB database"),
    # DuckDB would install and load httpfs for this; here external access is off, so nothing is fetched
    (["query", "--db", "{db}", "SELECT * FROM 'https://example.com/data.csv'"], "operations are disabled"),
])
def test_curate_query_bad_arguments_are_one_line(tmp_path, args, message):
    with Store(tmp_path / "c.duckdb"):
        pass
    (tmp_path / "junk.duckdb").write_bytes(b"not a database\n" * 100)
    place = {"db": str(tmp_path / "c.duckdb"), "dir": str(tmp_path), "junk": str(tmp_path / "junk.duckdb")}
    result = CliRunner().invoke(app, [a.format(**place) for a in args])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "install" not in result.output.lower()
