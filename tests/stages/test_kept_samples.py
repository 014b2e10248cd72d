"""kept_samples (the lean view rebalance reads) agrees with sample_status.kept on every sample."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest

from pipeline.store import Store, kept_samples_sql, now
from tests.stages.test_store import question_frame, sample_frame, verdicts

RULES = ["length", "structure", "repetition"]


def _random_store(path: Path, seed: int) -> Store:
    """40 samples over 10 questions with every combination the views must agree on: no verdicts,
    passes, fails, an older version failing under a newer pass (and the reverse), question
    verdicts (failing ones drop every sample of the question; a question verdict alone counts),
    judging still owed (judge_pending), the rule's current config hash preferred over a newer
    version (rule_configs), and a disabled rule (rule_states)."""
    rng = random.Random(seed)
    store = Store(path)
    questions = [(f"q{i}", rng.choice(["math", "code"])) for i in range(10)]
    samples = [(f"s{j:02d}", f"q{j % 10}") for j in range(40)]
    store.insert("questions", question_frame(*questions))
    store.insert("samples", sample_frame(*samples))
    for rule in RULES:
        for version in (1, 2):
            for config_hash in ("h-old", "h-new"):  # a verdict under the current hash counts over a newer version
                judged = [s for s, _ in samples if rng.random() < 0.4]
                if judged:
                    frame = verdicts(judged, [rng.random() < 0.75 for _ in judged], rule=rule, version=version)
                    store.insert("verdicts", frame.with_columns(config_hash=pl.lit(config_hash)))
        if rng.random() < 0.7:
            store.con.execute("INSERT INTO rule_configs VALUES (?, 'filter', 1, ?, '{}', 'run-0', ?)",
                              [rule, rng.choice(["h-old", "h-new"]), now()])
    # A disabled rule stops counting (its verdicts stay); one enabled explicitly still counts.
    for rule, enabled in zip(rng.sample(RULES, 2), (False, True)):
        store.con.execute("INSERT INTO rule_states VALUES (?, 'cheap', ?, NULL, NULL, ?)", [rule, enabled, now()])
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


@pytest.mark.parametrize("seed", range(8))
def test_kept_samples_equals_sample_status_kept(tmp_path: Path, seed: int):
    with _random_store(tmp_path / "curate.duckdb", seed) as store:
        lean = store.frame("SELECT sample_id, question_id, domain FROM kept_samples ORDER BY sample_id")
        full = store.frame("SELECT sample_id, question_id, domain FROM sample_status WHERE kept ORDER BY sample_id")
        everything = store.frame("SELECT kept FROM sample_status")["kept"]
    assert lean.equals(full)
    assert 0 < everything.sum() < everything.len()  # the case mix has both kept and dropped samples
    some = pl.DataFrame({"sample_id": [f"s{j:02d}" for j in range(0, 40, 3)]})
    with Store(tmp_path / "curate.duckdb") as store:  # the same query for a few samples (trace candidates)
        subset = store.frame(f"{kept_samples_sql('_some')} ORDER BY sample_id", _some=some)
    assert subset.equals(full.filter(pl.col("sample_id").is_in(some["sample_id"].to_list())))


# The plain definition over latest_verdicts: what the fast view must equal.
_VERDICT_FEATURES_BY_DEFINITION = """
SELECT s.sample_id,
       coalesce(list(v.rule ORDER BY v.rule) FILTER (WHERE NOT v.passed), []) AS failed_rules,
       map_from_entries(coalesce(list({'k': v.rule, 'v': v.score}) FILTER (WHERE v.stage = 'judge'), [])) AS judge_scores,
       count(v.rule) > 0 AND coalesce(bool_and(v.passed), false) AS kept
FROM samples s LEFT JOIN latest_verdicts v USING (sample_id)
GROUP BY s.sample_id ORDER BY s.sample_id
"""


@pytest.mark.parametrize("seed", range(8))
def test_sample_verdict_features_equal_their_definition(tmp_path: Path, seed: int):
    with _random_store(tmp_path / "curate.duckdb", seed) as store:
        judged = store.frame("SELECT sample_id FROM samples WHERE sample_id < 's20'")["sample_id"].to_list()
        for version in (1, 2):
            frame = verdicts(judged, [True] * len(judged), rule="reasoning_quality", version=version, stage="judge")
            store.insert("verdicts", frame.with_columns(score=pl.Series([float(version * 10 + i % 5) for i in range(len(judged))])))
        fast = store.frame("SELECT sample_id, failed_rules, judge_scores, kept FROM sample_verdict_features ORDER BY sample_id")
        plain = store.frame(_VERDICT_FEATURES_BY_DEFINITION)
    assert fast.to_dicts() == plain.to_dicts()
    assert fast["failed_rules"].list.len().sum() > 0 and fast["judge_scores"].drop_nulls().len() > 0
