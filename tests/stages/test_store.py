"""The DuckDB catalog (pipeline/store.py) and the run lock (pipeline/run_lock.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipeline.run_lock import run_lock
from pipeline.stages.synthesize import SAMPLE_SCHEMA
from pipeline.verdicts import VERDICT_SCHEMA, unjudged, verdict_frame
from pipeline.store import SCHEMA_VERSION, Store, StoreLockedError, now
from tests.conftest import ROOT

TABLES = {"meta", "runs", "questions", "quarantine", "samples", "verdicts", "question_difficulty",
          "exports", "selections", "shards"}
VIEWS = {"latest_verdicts", "sample_status"}


def question_frame(*specs: tuple[str, str]) -> pl.DataFrame:
    """(question_id, domain) pairs -> rows for `questions`."""
    return pl.DataFrame(
        [{"question_id": qid, "source": "test", "domain": domain, "subdomain": None, "text": f"Question {qid}?",
          "reference_answer": "4", "answer_type": "math", "tests": None, "pool_path": "pool.jsonl",
          "pool_line": i + 1, "first_run_id": "run-0"} for i, (qid, domain) in enumerate(specs)],
        schema_overrides={"tests": pl.List(pl.String), "subdomain": pl.String},
    )


def sample_frame(*specs: tuple[str, str]) -> pl.DataFrame:
    """(sample_id, question_id) pairs -> rows with SAMPLE_SCHEMA."""
    return pl.DataFrame(
        [{"sample_id": sid, "question_id": qid, "run_id": "run-0", "sample_index": i, "gen_config_hash": "g",
          "model": "test-model", "requested_format": "prose", "prompt_hash": "p",
          "messages": '[{"role": "user", "content": "Q?"}]', "raw_text": "<think>\nr\n</think>\n\n4",
          "reasoning": "r", "answer": "4", "think_closed_by": "model", "reasoning_finish": None,
          "finish_reason": "stop", "prompt_tokens": 10, "completion_tokens": 5, "sampling_params": "{}",
          "created_at": now()} for i, (sid, qid) in enumerate(specs)],
        schema=SAMPLE_SCHEMA,
    )


def verdicts(sample_ids: list[str], passed: list[bool], rule: str = "length", version: int = 1,
             stage: str = "filter") -> pl.DataFrame:
    results = pl.DataFrame({"passed": passed, "score": [float(p) for p in passed],
                            "reason": [None if p else f"{rule} failed" for p in passed]})
    return verdict_frame(sample_ids, results, stage=stage, rule=rule, version=version, run_id="run-0")


@pytest.fixture()
def store(tmp_path: Path):
    with Store(tmp_path / "curate.duckdb") as s:
        s.insert("questions", question_frame(("q1", "math"), ("q2", "code")))
        s.insert("samples", sample_frame(("s1", "q1"), ("s2", "q1"), ("s3", "q2")))
        yield s


def status(store: Store) -> dict:
    rows = store.frame("SELECT sample_id, kept, failed_rules, n_verdicts FROM sample_status").iter_rows()
    return {sid: (kept, failed, n) for sid, kept, failed, n in rows}


# --- schema and idempotent writes -------------------------------------------------------------


def test_opening_an_older_database_adds_new_columns(tmp_path: Path):
    import duckdb

    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:  # the questions table as schema version 1 made it
        con.execute("""CREATE TABLE questions (question_id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL,
            domain VARCHAR NOT NULL, subdomain VARCHAR, text VARCHAR NOT NULL, reference_answer VARCHAR,
            answer_type VARCHAR, tests VARCHAR[], pool_path VARCHAR NOT NULL, pool_line INTEGER NOT NULL,
            first_run_id VARCHAR NOT NULL)""")
        con.execute("INSERT INTO questions VALUES ('q', 's', 'math', NULL, 'x', NULL, NULL, NULL, 'p', 1, 'r')")
    with Store(path) as s:
        assert s.scalar("SELECT level IS NULL FROM questions WHERE question_id = 'q'") is True
        assert s.scalar("SELECT value FROM meta WHERE key = 'schema_version'") == str(SCHEMA_VERSION)


def test_a_schema_5_database_gets_config_hashes_in_the_verdict_key_and_keeps_its_rows(tmp_path: Path):
    """Schema 6 rebuilds `verdicts` (config_hash joins the primary key) and adds config_hash to
    judge_skips and question_difficulty; a database made by schema 5 opens with every row kept."""
    path = tmp_path / "v5.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute((ROOT / "tests" / "fixtures" / "store_schema5.sql").read_text())
        con.execute("INSERT INTO meta VALUES ('schema_version', '5')")
        con.execute("""INSERT INTO verdicts VALUES
            ('s1', 'filter', 'length', 1, true, 1.0, NULL, NULL, 'r0', now(), NULL, NULL),
            ('s1', 'filter', 'length', 2, false, 0.0, 'short', NULL, 'r0', now(), NULL, NULL),
            ('s2', 'judge', 'toy', 1, true, 5.0, 'fine', '{"attempts": 1}', 'r0', now(), 40, 9)""")
        con.execute("INSERT INTO judge_skips VALUES ('r0', 'toy', 1, 's1', 'token budget of 10 reached', now())")
        con.execute("INSERT INTO question_difficulty VALUES ('q1', 'llm_rating', 1, 0.5, 0, '5/10', 'r0', now())")
    with Store(path) as s:
        assert s.scalar("SELECT value FROM meta WHERE key = 'schema_version'") == str(SCHEMA_VERSION) == "6"
        rows = s.frame("""SELECT sample_id, rule, rule_version, passed, prompt_tokens, config_hash FROM verdicts
                          ORDER BY ALL""").rows()
        assert rows == [("s1", "length", 1, True, None, ""), ("s1", "length", 2, False, None, ""),
                        ("s2", "toy", 1, True, 40, "")]
        # The same sample, rule and version under another config hash is a new row now.
        again = verdict_frame(["s1"], pl.DataFrame({"passed": [True], "score": [1.0], "reason": [None]}),
                              stage="filter", rule="length", version=2, run_id="r1", config_hash="h2")
        assert s.insert("verdicts", again) == 1
        assert s.insert("verdicts", again) == 0
        # Old rows (no rule_configs record) keep the old meaning: the newest version, then the newest row.
        assert s.frame("SELECT rule_version, config_hash FROM latest_verdicts WHERE sample_id = 's1'").rows() == \
            [(2, "h2")]
        assert s.frame("SELECT sample_id, rule FROM judge_pending").rows() == [("s1", "toy")]
        assert s.scalar("SELECT config_hash IS NULL FROM question_difficulty") is True
        pk = s.scalar("""SELECT constraint_column_names FROM duckdb_constraints()
                         WHERE table_name = 'verdicts' AND constraint_type = 'PRIMARY KEY'""")
        assert pk == ["sample_id", "rule", "rule_version", "config_hash"]
    with Store(path) as s:  # opening again changes nothing
        assert s.count("verdicts") == 4 and s.count("judge_skips") == 1


def test_new_store_has_all_tables_views_and_schema_version(tmp_path: Path):
    with Store(tmp_path / "new.duckdb") as s:
        names = set(s.frame("SELECT table_name FROM information_schema.tables")["table_name"].to_list())
        assert TABLES | VIEWS <= names
        assert s.scalar("SELECT value FROM meta WHERE key = 'schema_version'") == str(SCHEMA_VERSION)
        assert s.count("samples") == 0
    # Re-opening an existing file keeps its rows and does not duplicate meta.
    with Store(tmp_path / "new.duckdb") as s:
        assert s.count("meta") == 1


def test_insert_is_idempotent_on_keys(store: Store):
    assert store.count("samples") == 3
    assert store.insert("samples", sample_frame(("s1", "q1"), ("s2", "q1"))) == 0
    assert store.insert("samples", sample_frame(("s1", "q1"), ("s4", "q2"))) == 1
    assert store.count("samples") == 4
    v = verdicts(["s1", "s2"], [True, False])
    assert store.insert("verdicts", v) == 2
    assert store.insert("verdicts", v) == 0
    # Same sample and rule, new version: a new row.
    assert store.insert("verdicts", verdicts(["s1"], [True], version=2)) == 1
    assert store.count("verdicts") == 3


def test_insert_keeps_the_first_row_for_a_key(store: Store):
    store.insert("verdicts", verdicts(["s1"], [False]))
    assert store.insert("verdicts", verdicts(["s1"], [True])) == 0
    assert store.scalar("SELECT passed FROM verdicts WHERE sample_id = 's1'") is False


def test_empty_frame_insert_is_a_no_op(store: Store):
    assert store.insert("verdicts", pl.DataFrame(schema=VERDICT_SCHEMA)) == 0
    store.insert_many({"verdicts": pl.DataFrame(), "shards": pl.DataFrame()})
    assert store.count("verdicts") == 0


def test_insert_many_rolls_back_all_tables_on_failure(store: Store):
    before_samples, before_verdicts = store.count("samples"), store.count("verdicts")
    bad_verdicts = verdicts(["s5"], [True]).with_columns(rule=pl.lit(None, pl.String))  # NOT NULL
    with pytest.raises(duckdb.ConstraintException):
        store.insert_many({"samples": sample_frame(("s5", "q1")), "verdicts": bad_verdicts})
    assert store.count("samples") == before_samples
    assert store.count("verdicts") == before_verdicts
    assert store.scalar("SELECT count(*) FROM samples WHERE sample_id = 's5'") == 0
    # The connection is usable afterwards and the same write succeeds once fixed.
    store.insert_many({"samples": sample_frame(("s5", "q1")), "verdicts": verdicts(["s5"], [True])})
    assert store.count("samples") == before_samples + 1
    assert store.count("verdicts") == before_verdicts + 1


def test_insert_many_rolls_back_on_a_type_error(store: Store):
    bad_shards = pl.DataFrame({"export_id": ["e"], "file": ["f"], "rows": ["many"], "bytes": [1], "sha256": ["x"]})
    with pytest.raises(duckdb.ConversionException):
        store.insert_many({"samples": sample_frame(("s6", "q1")), "shards": bad_shards})
    assert store.scalar("SELECT count(*) FROM samples WHERE sample_id = 's6'") == 0
    assert store.count("shards") == 0


def test_insert_with_a_column_the_table_lacks_raises(store: Store):
    bad = verdicts(["s1"], [True]).rename({"reason": "reasonn"})
    with pytest.raises(ValueError, match="reasonn"):
        store.insert_many({"samples": sample_frame(("s7", "q1")), "verdicts": bad})
    assert store.scalar("SELECT count(*) FROM samples WHERE sample_id = 's7'") == 0


def test_frame_registers_keyword_tables(store: Store):
    probe = pl.DataFrame({"id": ["s1", "s3", "nope"]})
    got = store.frame("SELECT sample_id FROM samples WHERE sample_id IN (SELECT id FROM probe) ORDER BY 1",
                      probe=probe)
    assert got["sample_id"].to_list() == ["s1", "s3"]
    assert store.existing_ids("samples", "sample_id", ["s2", "x"]) == {"s2"}
    assert store.existing_ids("samples", "sample_id", []) == set()
    assert store.frame("SELECT count(*) AS n FROM samples WHERE question_id = ?", ["q1"])["n"].item() == 2


# --- sample_status and latest_verdicts --------------------------------------------------------


def test_sample_status_kept_and_failed_rules(store: Store):
    store.insert("verdicts", verdicts(["s1", "s2"], [True, True], rule="length"))
    store.insert("verdicts", verdicts(["s1", "s2"], [True, False], rule="structure"))
    store.insert("verdicts", verdicts(["s2"], [False], rule="answer_match", stage="verify"))
    st = status(store)
    assert st["s1"] == (True, [], 2)
    assert st["s2"] == (False, ["answer_match", "structure"], 3)
    # No verdicts at all: not kept (nothing has vouched for it).
    assert st["s3"] == (False, [], 0)
    domains = dict(store.frame("SELECT sample_id, domain FROM sample_status").iter_rows())
    assert domains == {"s1": "math", "s2": "math", "s3": "code"}


def test_newer_rule_version_supersedes_the_older(store: Store):
    store.insert("verdicts", verdicts(["s1", "s2"], [False, True], rule="repetition", version=1))
    assert status(store)["s1"] == (False, ["repetition"], 1)
    store.insert("verdicts", verdicts(["s1", "s2"], [True, False], rule="repetition", version=2))
    st = status(store)
    assert st["s1"] == (True, [], 1)
    assert st["s2"] == (False, ["repetition"], 1)
    latest = store.frame("SELECT sample_id, rule_version FROM latest_verdicts ORDER BY sample_id")
    assert latest.rows() == [("s1", 2), ("s2", 2)]


def test_unjudged_lists_samples_without_this_rule_version(store: Store):
    store.insert("verdicts", verdicts(["s1"], [True], rule="length", version=1))
    assert unjudged(store, "length", 1)["sample_id"].to_list() == ["s2", "s3"]
    assert unjudged(store, "length", 2)["sample_id"].to_list() == ["s1", "s2", "s3"]
    batch = unjudged(store, "length", 1, where="domain = 'code'")
    assert batch["sample_id"].to_list() == ["s3"]
    assert {"question_text", "reference_answer", "answer_type", "domain", "reasoning"} <= set(batch.columns)
    assert unjudged(store, "length", 1, limit=1).height == 1


def test_runs_are_recorded(store: Store):
    run_id = store.start_run({"limit": 3}, "abc")
    store.finish_run(run_id, "finished", {"samples": 3})
    row = store.frame("SELECT status, config_hash, counts, finished_at FROM runs WHERE run_id = ?", [run_id])
    assert row["status"].item() == "finished"
    assert row["config_hash"].item() == "abc"
    assert '"samples": 3' in row["counts"].item()
    assert row["finished_at"].item() is not None


# --- read-only ----------------------------------------------------------------------------------


def test_read_only_store_reads_but_refuses_writes(tmp_path: Path):
    path = tmp_path / "ro.duckdb"
    with Store(path) as s:
        s.insert("questions", question_frame(("q1", "math")))
    with Store(path, read_only=True) as ro:
        assert ro.count("questions") == 1
        with pytest.raises(duckdb.Error, match="read-only"):
            ro.insert("questions", question_frame(("q2", "math")))
        with pytest.raises(duckdb.Error):
            ro.con.execute("DELETE FROM questions")
        assert ro.count("questions") == 1


def test_read_only_store_on_missing_file_raises(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no such database"):
        Store(tmp_path / "absent.duckdb", read_only=True)
    assert not (tmp_path / "absent.duckdb").exists()


# --- run lock -----------------------------------------------------------------------------------


def test_run_lock_conflicts_within_one_process(tmp_path: Path):
    db = tmp_path / "curate.duckdb"
    with run_lock(db):
        # flock is per open file description: a second os.open of the same file conflicts.
        with pytest.raises(StoreLockedError, match="being written"):
            with run_lock(db):
                pass
        assert (tmp_path / "curate.duckdb.lock").read_text() == str(os.getpid())
    # Released on exit: it can be taken again.
    with run_lock(db):
        pass


def test_run_lock_conflicts_across_processes(tmp_path: Path):
    db = tmp_path / "curate.duckdb"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pipeline.run_lock import run_lock
        from pipeline.store import StoreLockedError
        try:
            with run_lock({str(db)!r}):
                print("acquired")
        except StoreLockedError as exc:
            print("locked:", exc)
    """)
    with run_lock(db):
        held = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert held.returncode == 0, held.stderr
    assert held.stdout.startswith("locked:")
    assert f"pid {os.getpid()}" in held.stdout
    free = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert free.stdout.strip() == "acquired"


def test_recorded_run_finishes_or_fails_with_the_counts_so_far(tmp_path: Path):
    from pipeline.run_record import recorded_run

    db = str(tmp_path / "runs.duckdb")
    with recorded_run(db, {"a": 1}, "h") as (run_id, counts):
        counts["stage"] = 3
    with pytest.raises(KeyboardInterrupt):
        with recorded_run(db, {"a": 1}, "h") as (failed_id, counts):
            counts["stage"] = 1
            raise KeyboardInterrupt
    with Store(db, read_only=True) as store:
        rows = dict((r[0], r[1:]) for r in store.frame("SELECT run_id, status, counts, error FROM runs").rows())
    assert rows[run_id][0] == "finished" and '"stage": 3' in rows[run_id][1]
    assert rows[failed_id][0] == "failed" and '"stage": 1' in rows[failed_id][1] and rows[failed_id][2] == "KeyboardInterrupt: "


def test_a_run_that_died_is_marked_interrupted_by_the_next(tmp_path: Path):
    from pipeline.run_record import recorded_run

    db = str(tmp_path / "runs.duckdb")
    with Store(db) as store:  # what a SIGKILLed run leaves: its row still 'running'
        killed = store.start_run({"a": 1}, "h")
    with recorded_run(db, {"a": 1}, "h") as (run_id, counts):
        pass
    with Store(db, read_only=True) as store:
        rows = dict((r[0], r[1:]) for r in store.frame("SELECT run_id, status, error FROM runs").rows())
    assert rows[killed][0] == "interrupted" and "killed?" in rows[killed][1]
    assert rows[run_id] == ("finished", None)
