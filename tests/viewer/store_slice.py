"""A real store for the viewer's tests: a slice of the default store that `curate run` made with
the 1.5B default model (three runs, 2026-12-07): the 36 questions that have samples, their 72
samples (real prompts, reasoning and answers), every verdict (cheap rules, answer_match,
code_tests, the logical_completeness judge with its rationales), question verdicts, difficulty
signals, domains, the three exports with their selections and shards, and the style metrics.
Kept as Parquet in tests/fixtures/viewer_store/ (no model run in the tests) and loaded into a
store with today's schema. Record it again from a store with

    .venv/bin/python -m tests.viewer.store_slice curate.duckdb
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl

from pipeline.store import Store

SLICE = Path(__file__).resolve().parents[1] / "fixtures" / "viewer_store"
# table -> the rows of it the slice keeps (questions: those with samples)
TABLES = {
    "runs": "SELECT * FROM runs",
    "questions": "SELECT * FROM questions WHERE question_id IN (SELECT question_id FROM samples)",
    "samples": "SELECT * FROM samples",
    "verdicts": "SELECT * FROM verdicts",
    "question_verdicts": "SELECT * FROM question_verdicts WHERE question_id IN (SELECT question_id FROM samples)",
    "question_difficulty": "SELECT * FROM question_difficulty",
    "question_domains": "SELECT * FROM question_domains WHERE question_id IN (SELECT question_id FROM samples)",
    "rule_configs": "SELECT * FROM rule_configs",
    "judge_skips": "SELECT * FROM judge_skips",
    "exports": "SELECT * FROM exports",
    "selections": "SELECT * FROM selections",
    "export_rejects": "SELECT * FROM export_rejects",
    "shards": "SELECT * FROM shards",
    "style_metrics": "SELECT * FROM style_metrics",
    "style_summary": "SELECT * FROM style_summary",
    "style_compliance": "SELECT * FROM style_compliance",
}


def record(db: Path, folder: Path = SLICE) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(db), read_only=True) as con:
        for table, sql in TABLES.items():
            con.sql(sql).pl().write_parquet(folder / f"{table}.parquet")


def build(db: Path, folder: Path = SLICE) -> Path:
    """A store at `db` (today's schema and views) holding the slice."""
    with Store(db) as store:
        store.insert_many({table: pl.read_parquet(folder / f"{table}.parquet") for table in TABLES})
    return db


if __name__ == "__main__":
    record(Path(sys.argv[1]))


# A planted sample (not from the run): stored text that looks like HTML, script and Jinja, to
# show the viewer prints it as text and runs nothing.
HOSTILE = ("<script>alert('stored xss')</script><img src=x onerror=\"alert(1)\"> {{ 7*7 }} "
           "{% for x in range(3) %}loop{% endfor %} {{ cycler.__init__.__globals__.os.getpid() }}")
PLANTED_ID = "planted-hostile-text"


def build_with_planted(db: Path, folder: Path = SLICE) -> Path:
    """The slice plus PLANTED_ID: a copy of its first sample whose reasoning and answer are HOSTILE
    (made a day earlier, so it is listed last)."""
    build(db, folder)
    with Store(db) as store:
        first = store.frame("SELECT * FROM samples ORDER BY sample_id LIMIT 1")
        store.insert("samples", first.with_columns(sample_id=pl.lit(PLANTED_ID), reasoning=pl.lit(HOSTILE),
                                                   answer=pl.lit(HOSTILE), raw_text=pl.lit(HOSTILE),
                                                   created_at=first["created_at"].min() - timedelta(days=1)))
    return db
