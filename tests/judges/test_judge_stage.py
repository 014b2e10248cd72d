"""The judge stage (pipeline/stages/judge.py) on a real DuckDB file: which samples a rule judges
(cascade, applies_to, uncertain band), backfill, the token budget and what it leaves pending,
calibration refusal; and once with the real vLLM engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from judges.loader import load_rule
from pipeline.stages.judge import TokenBudget, eligible, run_judge
from pipeline.store import Store, now
from schemas.chat import ChatBackend, ChatResult, Completion
from schemas.judge_rule import JudgeRule
from tests.stages.test_store import question_frame, sample_frame, verdicts

RULE = """\
name: {name}
version: {version}
description: Toy rule for stage tests.
scale: {{min: 1, max: 5, anchors: {{1: bad, 5: good}}}}
threshold: 3
applies_to: {applies_to}
prompt: |
  {{{{ open }}}}answer
  {{{{ answer }}}}
  {{{{ close }}}}answer
{extra}"""


def make_rule(tmp_path: Path, name: str = "toy", version: int = 1, applies_to: str = "{}", extra: str = "") -> JudgeRule:
    path = tmp_path / f"{name}.yaml"
    path.write_text(RULE.format(name=name, version=version, applies_to=applies_to, extra=extra), encoding="utf-8")
    return load_rule(str(path))


class FakeEngineForOrchestrationTest(ChatBackend):
    """Orchestration unit test only: scores each sample with the digit after SCORE= in its answer."""

    model_name = "fake-orchestration"

    def __init__(self, prompt_tokens: int = 100, completion_tokens: int = 10):
        self.prompt_tokens, self.completion_tokens = prompt_tokens, completion_tokens
        self.judged: list[str] = []

    def chat(self, requests, on_progress=None):
        out = []
        for req in requests:
            score = int(re.search(r"SCORE=(\d)", req.messages[1]["content"]).group(1))
            self.judged.append(req.messages[1]["content"])
            text = json.dumps({"rationale": f"scored {score}", "score": score})
            out.append(ChatResult([Completion(text, "stop", self.completion_tokens)], prompt_tokens=self.prompt_tokens))
        return out


@pytest.fixture()
def store(tmp_path: Path):
    """Six samples: s1..s4 on math q1 (with reference), s5..s6 on code q2 (no reference).
    Every sample passed the cheap filter except s4; answers carry the fake judge's score."""
    questions = question_frame(("q1", "math"), ("q2", "code")).with_columns(
        reference_answer=pl.Series(["4", None], dtype=pl.String))
    ids = [("s1", "q1"), ("s2", "q1"), ("s3", "q1"), ("s4", "q1"), ("s5", "q2"), ("s6", "q2")]
    scores = {"s1": 5, "s2": 2, "s3": 4, "s4": 5, "s5": 3, "s6": 1}
    samples = sample_frame(*ids).with_columns(
        answer=pl.Series([f"SCORE={scores[s]}" for s, _ in ids]),
        requested_format=pl.Series(["prose", "boxed", "prose", "prose", "bullets", "prose"]))
    with Store(tmp_path / "curate.duckdb") as s:
        s.insert("questions", questions)
        s.insert("samples", samples)
        s.insert("verdicts", verdicts([i for i, _ in ids], [sid != "s4" for sid, _ in ids]))
        yield s


def ids(frame: pl.DataFrame) -> list[str]:
    return frame["sample_id"].to_list()


# --- which samples a rule judges ---------------------------------------------------------------


def test_cascade_judges_only_undecided_samples_that_went_through_the_filters(store, tmp_path):
    rule = make_rule(tmp_path)
    assert ids(eligible(store, rule)) == ["s1", "s2", "s3", "s5", "s6"]  # s4 failed a cheap rule
    store.insert("samples", sample_frame(("s7", "q1")))  # not filtered yet: not due either
    assert "s7" not in ids(eligible(store, rule))


def test_applies_to_domains_formats_and_reference(store, tmp_path):
    assert ids(eligible(store, make_rule(tmp_path, applies_to="{domains: [code]}"))) == ["s5", "s6"]
    assert ids(eligible(store, make_rule(tmp_path, applies_to="{formats: [prose]}"))) == ["s1", "s3", "s6"]
    assert ids(eligible(store, make_rule(tmp_path, applies_to="{requires_reference: true}"))) == ["s1", "s2", "s3"]


def test_a_contaminated_question_drops_its_samples_from_judging(store, tmp_path):
    store.insert("question_verdicts", pl.DataFrame([{
        "question_id": "q2", "stage": "screen", "rule": "decontam", "rule_version": 1, "passed": False,
        "score": 1.0, "reason": "matches gsm8k_test #3", "details": None, "run_id": "run-0", "created_at": now()}]))
    assert ids(eligible(store, make_rule(tmp_path))) == ["s1", "s2", "s3"]


def test_second_judge_runs_only_on_the_first_ones_uncertain_band(store, tmp_path):
    first = make_rule(tmp_path, "first", applies_to="{only_undecided: false}")
    run_judge(store, first, FakeEngineForOrchestrationTest(), "run-1")
    second = make_rule(tmp_path, "second", applies_to="{only_undecided: false, uncertain: "
                                                      "{rule: first, min_score: 2, max_score: 4}}")
    assert ids(eligible(store, second)) == ["s2", "s3", "s5"]  # first scored 2, 4, 3; s4 failed filter


def test_judge_cascade_skips_what_an_earlier_judge_rejected(store, tmp_path):
    run_judge(store, make_rule(tmp_path, "first"), FakeEngineForOrchestrationTest(), "run-1")
    # first rejected s2 (score 2) and s6 (score 1); a later judge never sees them.
    assert ids(eligible(store, make_rule(tmp_path, "second"))) == ["s1", "s3", "s5"]


# --- verdicts, tokens, backfill ------------------------------------------------------------------


def test_verdicts_carry_rule_version_scores_and_tokens(store, tmp_path):
    report = run_judge(store, make_rule(tmp_path, version=3), FakeEngineForOrchestrationTest(120, 15), "run-1")
    assert (report.eligible, report.judged, report.kept, report.errors) == (5, 5, 3, 0)
    assert (report.prompt_tokens, report.completion_tokens) == (600, 75)
    rows = store.frame("""SELECT sample_id, rule, rule_version, passed, score, prompt_tokens, completion_tokens
                          FROM verdicts WHERE stage = 'judge' ORDER BY sample_id""").rows()
    assert rows == [("s1", "toy", 3, True, 5.0, 120, 15), ("s2", "toy", 3, False, 2.0, 120, 15),
                    ("s3", "toy", 3, True, 4.0, 120, 15), ("s5", "toy", 3, True, 3.0, 120, 15),
                    ("s6", "toy", 3, False, 1.0, 120, 15)]
    failed = dict(store.frame("SELECT sample_id, failed_rules FROM sample_status").rows())
    assert failed["s2"] == ["toy"] and failed["s1"] == []


def test_backfill_judges_only_what_is_missing(store, tmp_path):
    rule = make_rule(tmp_path)
    engine = FakeEngineForOrchestrationTest()
    assert run_judge(store, rule, engine, "run-1", limit=2).judged == 2
    assert run_judge(store, rule, engine, "run-2").judged == 3
    assert run_judge(store, rule, engine, "run-3").judged == 0
    assert len(engine.judged) == 5
    # A new version of the rule is a new rule for backfill purposes.
    assert run_judge(store, make_rule(tmp_path, version=2), engine, "run-4").judged == 5


# --- token budget -------------------------------------------------------------------------------


def test_token_budget_stops_judging_and_leaves_the_rest_pending(store, tmp_path):
    rule = make_rule(tmp_path)
    engine = FakeEngineForOrchestrationTest(prompt_tokens=100, completion_tokens=10)  # 110 per sample
    budget = TokenBudget(300)
    report = run_judge(store, rule, engine, "run-1", batch_size=2, budget=budget)
    # First batch of 2 (220 tokens), then the next batch is sized to fit the 80 left: 1 sample.
    assert (report.judged, report.skipped_budget, budget.spent) == (3, 2, 330)
    pending = store.frame("SELECT sample_id, rule, reason FROM judge_pending ORDER BY sample_id").rows()
    assert pending == [("s5", "toy", "token budget of 300 reached"), ("s6", "toy", "token budget of 300 reached")]
    status = {r[0]: (r[1], r[2]) for r in store.frame("SELECT sample_id, kept, failed_rules FROM sample_status").rows()}
    assert status["s5"] == (False, ["toy (pending)"])  # owed a judge: not kept yet
    assert status["s1"] == (True, [])

    # The next run (no budget) judges exactly what was left, and nothing is pending any more.
    later = run_judge(store, rule, engine, "run-2")
    assert later.judged == 2 and later.skipped_budget == 0
    assert store.scalar("SELECT count(*) FROM judge_pending") == 0
    assert store.frame("SELECT kept FROM sample_status WHERE sample_id = 's5'").item() is True


def test_an_exhausted_budget_judges_nothing(store, tmp_path):
    engine = FakeEngineForOrchestrationTest()
    report = run_judge(store, make_rule(tmp_path), engine, "run-1", budget=TokenBudget(0))
    assert (report.judged, report.skipped_budget, engine.judged) == (0, 5, [])


# --- calibration --------------------------------------------------------------------------------


def test_a_rule_needing_calibration_is_refused_until_an_eval_meets_it(store, tmp_path):
    rule = make_rule(tmp_path, extra="calibration: {labels: labels.jsonl, min_agreement: 0.7}\n")
    engine = FakeEngineForOrchestrationTest()
    report = run_judge(store, rule, engine, "run-1")
    assert report.judged == 0 and "no pointwise eval of toy v1 by fake-orchestration yet" in report.refused
    assert engine.judged == []

    def record_eval(agreement: float, version: int = 1, model: str = "fake-orchestration"):
        store.insert("judge_evals", pl.DataFrame([{
            "eval_id": f"e{agreement}-{version}-{model}", "rule": "toy", "rule_version": version, "model": model,
            "labels": "labels.jsonl", "kind": "pointwise", "n_items": 10, "n_judged": 10, "errors": 0, "ties": 0,
            "agreement": agreement, "accuracy": agreement, "kappa": 0.1, "details": None, "created_at": now()}]))

    record_eval(0.9, version=2)  # another version's eval does not count
    record_eval(0.95, model="another-judge")  # nor another judge model's
    record_eval(0.6)
    assert "best pointwise agreement 0.600 by fake-orchestration < 0.7" in run_judge(store, rule, engine, "run-2").refused
    record_eval(0.75)
    report = run_judge(store, rule, engine, "run-3")
    assert report.refused is None and report.judged == 5


# --- the real engine ------------------------------------------------------------------------------


@pytest.mark.engine
def test_real_engine_judges_and_stores_tokens(store, vllm_engine):
    rule = load_rule("logical_completeness")
    report = run_judge(store, rule, vllm_engine, "run-1", limit=3)
    assert report.judged == 3 and report.prompt_tokens > 3 * 100 and report.completion_tokens > 0
    rows = store.frame("""SELECT score, passed, reason, prompt_tokens, completion_tokens, details
                          FROM verdicts WHERE rule = 'logical_completeness'""").to_dicts()
    for row in rows:
        details = json.loads(row["details"])
        assert row["prompt_tokens"] > 100 and row["completion_tokens"] > 0
        if row["score"] is None:  # a judge error: recorded with its raw text, never a pass
            assert not row["passed"] and row["reason"].startswith("judge error") and details["raw"]
        else:
            assert rule.scale.min <= row["score"] <= rule.scale.max
            assert row["passed"] == (row["score"] >= rule.threshold)
            json.loads(details["raw"][-1])


def test_a_question_rule_is_refused_by_the_sample_judge(store):
    rule = load_rule("difficulty_rating")
    engine = FakeEngineForOrchestrationTest()
    report = run_judge(store, rule, engine, "run-1")
    assert report.judged == 0 and engine.judged == [] and "question rule" in report.refused
