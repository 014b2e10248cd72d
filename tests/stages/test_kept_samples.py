"""kept_samples (the lean view rebalance reads) agrees with sample_status.kept on every sample."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pipeline.store import Store, now
from tests.stages.test_store import question_frame, sample_frame, verdicts

RULES = ["length", "structure", "repetition"]


def _random_store(path: Path, seed: int) -> Store:
    """40 samples over 10 questions with every combination the views must agree on: no verdicts,
    passes, fails, an older version failing under a newer pass (and the reverse), question
    verdicts (failing ones drop every sample of the question; a question verdict alone counts),
    and judging still owed (judge_pending)."""
    rng = random.Random(seed)
    store = Store(path)
    questions = [(f"q{i}", rng.choice(["math", "code"])) for i in range(10)]
    samples = [(f"s{j:02d}", f"q{j % 10}") for j in range(40)]
    store.insert("questions", question_frame(*questions))
    store.insert("samples", sample_frame(*samples))
    for rule in RULES:
        for version in (1, 2):
            judged = [s for s, _ in samples if rng.random() < 0.6]
            if judged:
                store.insert("verdicts", verdicts(judged, [rng.random() < 0.75 for _ in judged], rule=rule,
                                                  version=version))
    for qid, _ in questions:
        if rng.random() < 0.4:
            store.con.execute("INSERT INTO question_verdicts (question_id, stage, rule, rule_version, passed, run_id, "
                              "created_at) VALUES (?, 'dedup', 'near_duplicate', 1, ?, 'run-0', ?)",
                              [qid, rng.random() < 0.6, now()])
    for sid, _ in samples:
        if rng.random() < 0.15:
            store.con.execute("INSERT INTO judge_skips (run_id, rule, rule_version, sample_id, reason, created_at) "
                              "VALUES ('run-0', 'length', 2, ?, 'token budget', ?)", [sid, now()])
    return store


@pytest.mark.parametrize("seed", range(5))
def test_kept_samples_equals_sample_status_kept(tmp_path: Path, seed: int):
    with _random_store(tmp_path / "curate.duckdb", seed) as store:
        lean = store.frame("SELECT sample_id, question_id, domain FROM kept_samples ORDER BY sample_id")
        full = store.frame("SELECT sample_id, question_id, domain FROM sample_status WHERE kept ORDER BY sample_id")
        everything = store.frame("SELECT kept FROM sample_status")["kept"]
    assert lean.equals(full)
    assert 0 < everything.sum() < everything.len()  # the case mix has both kept and dropped samples
