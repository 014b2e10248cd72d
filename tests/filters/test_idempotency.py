"""Row-level idempotence, fast parts: config hashes of rules and judges, which verdict is current
(latest_verdicts, judge_pending) when parameters change and change back, and the engine call
counter. Real DuckDB files and real rules; the only fake is the orchestration-test engine.
The same on the real Prefect flow and vLLM engine: tests/flows/test_idempotency_flow.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from filters.base import config_fingerprint
from tests.rule_sets import by_name, cheap_rules, verify_rules
from pipeline.engines import factory
from tests.rule_sets import run_filters
from pipeline.stages.judge import TokenBudget, judge_config, run_judge
from pipeline.verdicts import RuleConfig, record_configs
from pipeline.store import Store
from schemas.chat import ChatBackend, ChatRequest, ChatResult, Completion, Sampling
from schemas.config import FilterConfig
from tests.judges.test_judge_stage import make_rule
from tests.stages.test_store import question_frame, sample_frame, verdicts

# --- config hashes -----------------------------------------------------------------------------


def test_fingerprint_is_stable_and_changes_with_name_version_and_params():
    base = config_fingerprint("length", 2, {"min": 20, "max": 200})
    assert base == config_fingerprint("length", 2, {"max": 200, "min": 20})  # key order does not matter
    assert len({base, config_fingerprint("length", 3, {"min": 20, "max": 200}),
                config_fingerprint("lengths", 2, {"min": 20, "max": 200}),
                config_fingerprint("length", 2, {"min": 21, "max": 200}),
                config_fingerprint("length", 2, {"min": 20})}) == 5
    with pytest.raises(TypeError, match="rule 'length': parameters must be JSON"):
        config_fingerprint("length", 2, {"bounds": object()})


def _hashes(cfg: FilterConfig, styles: dict | None = None) -> dict[str, str]:
    custom = [{"name": n, "instruction": f"Write it as {n}.", "pattern": p} for n, p in (styles or {}).items()]
    return {r.name: r.config_hash for r in cheap_rules(cfg, synthesis={"custom_formats": custom})}


def test_the_default_rules_keep_the_hashes_their_verdicts_were_stored_with():
    """Recorded before rules declared Params (4c977f4): a changed hash would recompute every
    stored verdict of the rule, so a change here needs a migration. Changed on purpose since:
    answer_match v3 (hedged answers fail) and code_tests v2 (program and tests apart), so the
    verify pass re-checks stored samples with the stricter verifiers (no engine needed)."""
    hashes = {r.name: r.config_hash for r in cheap_rules() + verify_rules()}
    assert hashes == {
        "completeness": "d76c002f842134ed", "format_compliance": "2627aa48cd8e29d9", "judge_bait": "0bfe17e9028c681b",
        "language": "a3a9bc7051fa86ff", "length": "67c4f0a1c79fb88b", "redundancy": "cb2d9373ec7bd7a0",
        "repetition": "6c5a3f29052161cc", "self_identity": "db8f21c18a4ddb1d", "structure": "455d0ab8d927ba59",
        "truncation": "b18665874c35d86a", "answer_match": "546cb8f1867dca35", "code_tests": "22030836a5aa10e6"}


def test_changing_one_threshold_changes_only_that_rules_hash():
    default = _hashes(FilterConfig())
    assert default == _hashes(FilterConfig())  # rebuilt from the same config: the same hashes
    # Values given explicitly equal to the defaults (YAML ints for floats too) hash the same.
    assert default == _hashes(FilterConfig.model_validate({"repetition": {"max_dup_line_frac": 0.3},
                                                            "language": {"min_chars": 20}}))
    changes = {
        "repetition": {"repetition": {"max_top_2gram_frac": 0.5}},
        "length": {"length": {"default": {"min_reasoning_chars": 50}}},
        "redundancy": {"redundancy": {"min_markers": 9}},
        "completeness": {"completeness": {"min_chars_at_level_0": 1}},
        "language": {"language": {"max_second_script_share": 0.2}},
    }
    for rule, change in changes.items():
        changed = _hashes(FilterConfig.model_validate(change))
        assert {name for name in default if default[name] != changed[name]} == {rule}, rule
    styled = _hashes(FilterConfig(), {"qed": r"Q\.E\.D\."})
    assert {name for name in default if default[name] != styled[name]} == {"format_compliance"}


def test_judge_hash_follows_what_changes_a_verdict(tmp_path: Path):
    rule = make_rule(tmp_path)
    base = judge_config(rule, "model-a").config_hash
    assert base == judge_config(make_rule(tmp_path), "model-a").config_hash
    assert judge_config(rule, "model-b").config_hash != base  # another judge model
    assert judge_config(make_rule(tmp_path, version=2), "model-a").config_hash != base
    for changed in (rule.model_copy(update={"threshold": 4}),
                    rule.model_copy(update={"sampling": rule.sampling.model_copy(update={"max_tokens": 64})}),
                    rule.model_copy(update={"prompt": rule.prompt + "Be brief.\n"}),
                    rule.model_copy(update={"description": "Another rubric."})):
        assert judge_config(changed, "model-a").config_hash != base
    # Who the rule applies to decides which samples are judged, not what a verdict says.
    narrowed = make_rule(tmp_path, applies_to="{domains: [math], only_undecided: false}")
    assert judge_config(narrowed, "model-a").config_hash == base


# --- recompute only what changed; switching back reuses -----------------------------------------


def _samples_store(path: Path, n: int = 12) -> Store:
    store = Store(path)
    store.insert("questions", question_frame(*[(f"q{i}", "math") for i in range(n)]))
    # Reasoning lengths 10, 40, 70, ... chars: a length threshold splits them.
    reasoning = [("step " * (2 + 6 * i)).strip() for i in range(n)]
    store.insert("samples", sample_frame(*[(f"s{i:02d}", f"q{i}") for i in range(n)]).with_columns(
        reasoning=pl.Series(reasoning),
        raw_text=pl.Series([f"<think>\n{r}\n</think>\n\nThe answer is 4." for r in reasoning]),
        answer=pl.lit("The answer is 4.")))
    return store


def _length_cfg(min_chars: int) -> FilterConfig:
    return FilterConfig.model_validate({"length": {"default": {"min_reasoning_chars": min_chars}}})


def _rows(store: Store, where: str = "TRUE") -> list[tuple]:
    return store.frame(f"""SELECT sample_id, rule, config_hash, passed, run_id, created_at FROM verdicts
                           WHERE {where} ORDER BY ALL""").rows()


def _failed_length(store: Store) -> list[str]:
    return store.frame("""SELECT sample_id FROM latest_verdicts WHERE rule = 'length' AND NOT passed
                          ORDER BY 1""")["sample_id"].to_list()


def test_a_changed_threshold_recomputes_that_rule_and_switching_back_recomputes_nothing(tmp_path: Path):
    with _samples_store(tmp_path / "c.duckdb") as store:
        first = run_filters(store, cheap_rules(_length_cfg(100)), "run-a")
        assert all(c.checked == 12 for c in first)
        failing_at_100 = _failed_length(store)
        others = _rows(store, "rule <> 'length'")
        assert by_name(run_filters(store, cheap_rules(_length_cfg(100)), "run-a2"), "rule")["length"].checked == 0  # same config

        changed = {c.rule: c.checked for c in run_filters(store, cheap_rules(_length_cfg(30)), "run-b")}
        assert changed.pop("length") == 12 and set(changed.values()) == {0}
        assert _rows(store, "rule <> 'length'") == others  # untouched: same rows, same created_at
        failing_at_30 = _failed_length(store)
        assert failing_at_30 == ["s00"] and len(failing_at_100) > 1
        length_rows = _rows(store, "rule = 'length'")

        back = run_filters(store, cheap_rules(_length_cfg(100)), "run-a3")
        assert all(c.checked == 0 for c in back)  # the run-a verdicts exist: nothing recomputed
        assert _rows(store, "rule = 'length'") == length_rows  # and nothing written
        # ... yet they are current again, although the run-b rows are newer.
        assert _failed_length(store) == failing_at_100
        status = dict(store.frame("SELECT sample_id, failed_rules FROM sample_status").rows())
        assert all(("length" in status[s]) == (s in failing_at_100) for s in status)
        assert store.frame("SELECT DISTINCT run_id FROM latest_verdicts WHERE rule = 'length'").rows() == [("run-a",)]
        recorded = store.frame("SELECT rule, config_hash, run_id, params FROM rule_configs WHERE rule = 'length'").row(0)
        assert recorded[1] == by_name(cheap_rules(_length_cfg(100)))["length"].config_hash and recorded[2] == "run-a3"
        assert json.loads(recorded[3])["length"]["default"]["min_reasoning_chars"] == 100


def test_current_verdicts_fall_back_for_rules_without_a_record_and_samples_without_one(tmp_path: Path):
    with _samples_store(tmp_path / "c.duckdb", n=3) as store:
        # No record (a database from before config hashes): the newest version, then the newest row.
        store.insert("verdicts", verdicts(["s00", "s01"], [False, False], rule="toy", version=1))
        store.insert("verdicts", verdicts(["s00"], [True], rule="toy", version=2))
        latest = store.frame("SELECT sample_id, rule_version FROM latest_verdicts WHERE rule = 'toy' ORDER BY 1")
        assert latest.rows() == [("s00", 2), ("s01", 1)]
        # A record: its hash wins over a newer version; a sample without a verdict under it
        # (here s01) keeps its newest one.
        hashed = verdicts(["s00"], [False], rule="toy", version=1).with_columns(config_hash=pl.lit("h1"))
        store.insert("verdicts", hashed)
        record_configs(store, [RuleConfig("toy", "filter", 1, "h1")], "run-x")
        latest = store.frame("""SELECT sample_id, rule_version, config_hash, passed FROM latest_verdicts
                                WHERE rule = 'toy' ORDER BY 1""")
        assert latest.rows() == [("s00", 1, "h1", False), ("s01", 1, "", False)]
        assert record_configs(store, [RuleConfig("toy", "filter", 1, "h1")], "run-y") == 0  # unchanged: no write


# --- judges: a new model re-judges; switching back does not; pending follows the hash ---------------


class FakeEngineForOrchestrationTest(ChatBackend):
    """Orchestration unit test only: every answer gets the score written after SCORE= in it."""

    def __init__(self, model_name: str):
        self.model_name = model_name
        self.requests = 0

    def chat(self, requests, on_progress=None):
        self.requests += len(requests)
        out = []
        for req in requests:
            score = int(re.search(r"SCORE=(\d)", req.messages[1]["content"]).group(1))
            out.append(ChatResult([Completion(json.dumps({"rationale": "ok", "score": score}), "stop", 5)],
                                  prompt_tokens=50))
        return out


def test_a_new_judge_model_rejudges_and_switching_back_judges_nothing(tmp_path: Path):
    rule = make_rule(tmp_path, applies_to="{after_stages: []}")
    with Store(tmp_path / "c.duckdb") as store:
        store.insert("questions", question_frame(("q1", "math")))
        store.insert("samples", sample_frame(("s1", "q1"), ("s2", "q1")).with_columns(
            answer=pl.Series(["SCORE=5", "SCORE=1"])))
        a, b = FakeEngineForOrchestrationTest("model-a"), FakeEngineForOrchestrationTest("model-b")
        assert run_judge(store, rule, a, "r1").judged == 2
        assert run_judge(store, rule, a, "r2").judged == 0 and a.requests == 2
        assert run_judge(store, rule, b, "r3").judged == 2 and b.requests == 2
        assert run_judge(store, rule, a, "r4").judged == 0 and a.requests == 2
        assert store.frame("SELECT DISTINCT run_id FROM latest_verdicts WHERE rule = 'toy'").rows() == [("r1",)]
        # Budget: model b again with no tokens to spend leaves both samples pending under b's hash...
        b_hash = judge_config(rule, "model-b").config_hash
        store.con.execute("DELETE FROM verdicts WHERE config_hash = ?", [b_hash])
        report = run_judge(store, rule, b, "r5", budget=TokenBudget(0))
        assert report.skipped_budget == 2
        assert store.frame("SELECT sample_id FROM judge_pending ORDER BY 1").rows() == [("s1",), ("s2",)]
        # ...and switching back to model a, whose verdicts exist, owes nothing.
        assert run_judge(store, rule, a, "r6").judged == 0
        assert store.count("judge_pending") == 0


# --- the engine call counter -------------------------------------------------------------------------


class CountingFakeEngineForOrchestrationTest(ChatBackend):
    model_name = "fake"

    def chat(self, requests, on_progress=None):
        return [ChatResult([Completion("x", "stop", 1)] * r.sampling.n, prompt_tokens=1) for r in requests]


def test_engines_count_requests_and_completions_sent_and_load_only_when_used():
    loads = []
    engine = factory.LazyEngine("fake", lambda: loads.append(1) or CountingFakeEngineForOrchestrationTest())
    before = factory.engine_calls()
    assert engine.chat([]) == []
    assert factory.engine_calls_since(before) == {"batches": 0, "requests": 0, "completions": 0, "model_loads": 0}
    assert loads == []  # nothing sent, nothing loaded
    engine.chat([ChatRequest([{"role": "user", "content": "a"}], Sampling(n=3)),
                 ChatRequest([{"role": "user", "content": "b"}], Sampling(n=1))])
    engine.chat([ChatRequest([{"role": "user", "content": "c"}])])
    assert factory.engine_calls_since(before) == {"batches": 2, "requests": 3, "completions": 5, "model_loads": 0}
    assert loads == [1]
