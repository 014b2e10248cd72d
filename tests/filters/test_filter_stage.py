"""The rule-filter stage (pipeline/stages/filter.py) on a real DuckDB file: one verdict per rule
per sample, only missing verdicts computed, chunks written whole."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.verdict_loop import run_verdicts
from filters.judge_bait import JudgeBaitFilter
from filters.length import LengthFilter
from filters.structure import StructureFilter
from pipeline.store import Store
from tests.stages.test_store import question_frame, sample_frame


def _store(path: Path, n: int) -> Store:
    store = Store(path)
    store.insert("questions", question_frame(*[(f"q{i}", "math") for i in range(n)]))
    samples = sample_frame(*[(f"s{i:03d}", f"q{i}") for i in range(n)]).with_columns(
        raw_text=pl.Series(["4" if i % 3 == 0 else "<think>\nr\n</think>\n\n4" for i in range(n)]))
    store.insert("samples", samples)
    return store


def verdict_counts(store: Store) -> dict[str, int]:
    return dict(store.frame("SELECT rule, count(*) FROM verdicts GROUP BY rule").rows())


def test_every_rule_once_per_sample_and_a_rerun_checks_nothing(tmp_path: Path):
    rules = [StructureFilter(), JudgeBaitFilter()]
    with _store(tmp_path / "c.duckdb", 25) as store:
        first = run_verdicts(store, rules, "run-1", "filter", chunk_rows=7)  # several chunks
        assert [(c.rule, c.checked, c.failed) for c in first] == [("structure", 25, 9), ("judge_bait", 25, 0)]
        assert verdict_counts(store) == {"structure": 25, "judge_bait": 25}
        again = run_verdicts(store, rules, "run-2", "filter", chunk_rows=7)
        assert [(c.checked, c.failed) for c in again] == [(0, 0), (0, 0)]


def test_a_new_rule_or_a_missing_verdict_is_all_that_runs(tmp_path: Path):
    with _store(tmp_path / "c.duckdb", 10) as store:
        run_verdicts(store, [StructureFilter()], "run-1", "filter")
        store.con.execute("DELETE FROM verdicts WHERE sample_id = 's004'")
        length = LengthFilter()
        counts = run_verdicts(store, [StructureFilter(), length], "run-2", "filter")
        assert [(c.rule, c.checked) for c in counts] == [("structure", 1), ("length", 10)]
        assert verdict_counts(store) == {"structure": 10, "length": 10}
