"""Judge evaluation against labelled sets (judges/eval.py): loaders, metrics with a scripted
engine, the judge_evals row (pipeline/judge_eval_store.py) and the calibration gate; one
real-engine run on LLMBar."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest

from judges.eval import EvalResult, cohen_kappa, evaluate, load_labels
from judges.loader import load_rule
from pipeline.judge_eval_store import store_eval
from pipeline.stages.judge import calibration_gap
from pipeline.store import Store
from schemas.chat import ChatBackend, ChatResult, Completion
from schemas.judge_rule import JudgeRule
from schemas.yaml_loading import ConfigError

LLMBAR = Path(__file__).resolve().parents[2] / "data" / "labels" / "llmbar"
NATURAL = LLMBAR / "LLMBar_Natural_dataset.json"

RULE_YAML = """\
name: toy_eval
version: 3
description: Is the answer good?
scale:
  min: 1
  max: 5
  anchors: {1: "bad", 5: "good"}
threshold: 3
calibration: {labels: labels.jsonl, min_agreement: 0.6}
prompt: |
  {{ open }}question
  {{ question }}
  {{ close }}question
  {{ open }}answer
  {{ answer }}
  {{ close }}answer
"""


@pytest.fixture()
def rule(tmp_path: Path) -> JudgeRule:
    path = tmp_path / "toy_eval.yaml"
    path.write_text(RULE_YAML, encoding="utf-8")
    return load_rule(str(path))


class FakeEngineForOrchestrationTest(ChatBackend):
    """Scores each request from a [[k]] marker in the rendered answer; [[x]] is unparsable output.

    Orchestration unit test only: lets a test choose every judge score, and so every prediction.
    """

    model_name = "fake-orchestration"

    def __init__(self):
        self.requests = 0

    def chat(self, requests, on_progress=None):
        results = []
        for req in requests:
            self.requests += 1
            mark = re.search(r"\[\[(\d|x)\]\]", req.messages[1]["content"]).group(1)
            text = "not json" if mark == "x" else json.dumps({"rationale": "scripted", "score": int(mark)})
            results.append(ChatResult([Completion(text, "stop", 7)], prompt_tokens=50))
        return results


def write_json(path: Path, items: list[dict]) -> Path:
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def write_jsonl(path: Path, items: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in items), encoding="utf-8")
    return path


def pair(n: int, s1: str, s2: str, label: int) -> dict:
    return {"input": f"Task {n}", "output_1": f"first [[{s1}]]", "output_2": f"second [[{s2}]]", "label": label}


def point(n: int, score: str, label, **extra) -> dict:
    return {"question": f"Question {n}", "answer": f"answer [[{score}]]", "label": label, **extra}


# --- loading --------------------------------------------------------------------------------------


def test_llmbar_natural_loads_as_pairwise():
    labels = load_labels(NATURAL)
    assert labels.kind == "pairwise"
    assert len(labels.items) == 100
    assert labels.judgements == 200
    assert {i.label for i in labels.items} == {1, 2}
    assert {i.subset for i in labels.items} == {"LLMBar_Natural_dataset"}
    first = labels.items[0]
    assert len(first.outputs) == 2 and first.question and first.reasoning == "" and first.reference is None
    assert len(load_labels(NATURAL, limit=6).items) == 6


def test_llmbar_folder_concatenates_every_file_as_a_subset():
    labels = load_labels(LLMBAR)
    assert labels.kind == "pairwise"
    assert len(labels.items) == 885
    subsets = {s: sum(i.subset == s for i in labels.items) for s in dict.fromkeys(i.subset for i in labels.items)}
    assert len(subsets) == 8
    assert subsets["LLMBar_Natural_dataset"] == 100
    assert subsets["Processed_MT-Bench_dataset"] == 200


def test_pointwise_jsonl_loads_with_optional_fields(tmp_path: Path):
    path = write_jsonl(tmp_path / "points.jsonl", [
        point(1, "5", True, reasoning="because", reference="42"), "", point(2, "1", 0), point(3, "2", 1)])
    labels = load_labels(path)
    assert labels.kind == "pointwise"
    assert [i.label for i in labels.items] == [True, False, True]
    assert (labels.items[0].reasoning, labels.items[0].reference) == ("because", "42")
    assert (labels.items[1].reasoning, labels.items[1].reference) == ("", None)
    assert labels.items[0].subset == "points"


@pytest.mark.parametrize("bad, line, field", [
    ('{"question": "q", "answer": "a", "label": "yes"}', 3, "label"),
    ('{"question": "q", "label": true}', 3, "answer"),
    ('{"question": "q", "answer": 7, "label": true}', 3, "answer"),
    ('{"question": "q", "answer": "a", "label": 2}', 3, "label"),
    ('{"question": "q", "answer": "a", "label": true, "score": 3}', 3, "score"),
])
def test_bad_pointwise_line_names_file_line_and_field(tmp_path: Path, bad: str, line: int, field: str):
    path = write_jsonl(tmp_path / "points.jsonl", [point(1, "5", True), point(2, "1", False), bad])
    with pytest.raises(ConfigError) as exc:
        load_labels(path)
    assert f"{path}:{line}: field {field!r}:" in str(exc.value)


def test_unparsable_pointwise_line_names_file_and_line(tmp_path: Path):
    path = write_jsonl(tmp_path / "points.jsonl", [point(1, "5", True), '{"question": "q",'])
    with pytest.raises(ConfigError, match=re.escape(f"{path}:2: invalid JSON")):
        load_labels(path)


def test_bad_pairwise_item_names_file_index_and_field(tmp_path: Path):
    path = write_json(tmp_path / "pairs.json", [pair(1, "5", "1", 1), pair(2, "5", "1", 3)])
    with pytest.raises(ConfigError, match=re.escape(f"{path}: item [1]: field 'label': must be 1 or 2")):
        load_labels(path)
    del_field = [pair(1, "5", "1", 1)]
    del del_field[0]["output_2"]
    write_json(path, del_field)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: item [0]: field 'output_2': missing")):
        load_labels(path)


def test_empty_sets_and_folders_are_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="no labelled items"):
        load_labels(write_jsonl(tmp_path / "empty.jsonl", []))
    folder = tmp_path / "none"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"no \*\.json"):
        load_labels(folder)


# --- kappa ----------------------------------------------------------------------------------------


def test_cohen_kappa_known_values():
    # Textbook 2x2 table: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> po 0.7, pe 0.5, kappa 0.4.
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa([1, 2, 1, 2], [1, 2, 1, 2]) == 1.0
    assert cohen_kappa([1, 2, 1, 2], [2, 1, 2, 1]) == -1.0
    assert cohen_kappa([1, 1, 1, 1], [1, 2, 1, 2]) == 0.0  # constant predictions
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) == 0.0  # expected agreement 1: 0/0, defined as 0
    assert cohen_kappa([], []) is None


# --- metrics with a scripted engine ---------------------------------------------------------------


def test_pairwise_metrics_ties_errors_and_subsets(tmp_path: Path, rule: JudgeRule):
    folder = tmp_path / "pairs"
    folder.mkdir()
    write_json(folder / "a.json", [
        pair(1, "5", "2", 1),  # predicts 1: correct
        pair(2, "1", "4", 2),  # predicts 2: correct
        pair(3, "2", "3", 1),  # predicts 2: wrong
        pair(4, "3", "3", 2),  # tie
    ])
    write_json(folder / "b.json", [
        pair(5, "x", "5", 1),  # judge error on output 1
        pair(6, "4", "1", 2),  # predicts 1: wrong
        pair(7, "5", "1", 1),  # predicts 1: correct
    ])
    engine = FakeEngineForOrchestrationTest()
    progress: list[int] = []
    result = evaluate(rule, load_labels(folder), engine, batch_size=4, on_progress=progress.append, mode="pointwise")
    assert sum(progress) == 14
    assert engine.requests == 14 + 2  # the unparsable output is retried twice
    assert (result.kind, result.n_items, result.n_judged, result.errors, result.ties) == ("pairwise", 7, 6, 1, 1)
    assert result.decided == 5
    # decided: predicted [1, 2, 2, 1, 1] vs gold [1, 2, 1, 2, 1] -> 3/5; pe = (3*3 + 2*2)/25 = 0.52
    assert result.agreement == pytest.approx(3 / 5)
    assert result.accuracy == pytest.approx(3 / 7)
    assert result.kappa == pytest.approx((0.6 - 0.52) / 0.48)
    d = result.details
    assert d["subsets"]["a"] == {"n": 4, "decided": 3, "correct": 2, "ties": 1, "errors": 0,
                                 "agreement": pytest.approx(2 / 3), "accuracy": 0.5, "kappa": pytest.approx(0.4)}
    assert (d["subsets"]["b"]["decided"], d["subsets"]["b"]["errors"], d["subsets"]["b"]["agreement"]) == (2, 1, 0.5)
    assert d["score_histogram"] == {"1": 3, "2": 2, "3": 3, "4": 2, "5": 3, "error": 1}
    assert d["predicted"] == {"1": 3, "2": 2, "tie": 1, "error": 1}
    assert d["mean_prompt_tokens"] == pytest.approx((13 * 50 + 3 * 50) / 14)
    assert d["mean_completion_tokens"] == pytest.approx((13 * 7 + 3 * 7) / 14)
    assert len(d["error_examples"]) == 1 and "not JSON" in d["error_examples"][0]
    assert result.summary() == ("toy_eval v3 (pairwise set, pointwise mode, 7 items): agreement 0.600, accuracy "
                                "0.429, kappa 0.167; 5 decided, 1 ties, 1 errors")


def test_pointwise_metrics_threshold_and_errors(tmp_path: Path, rule: JudgeRule):
    path = write_jsonl(tmp_path / "points.jsonl", [
        point(1, "5", True),   # passes: correct
        point(2, "2", 1),      # fails: wrong
        point(3, "1", False),  # fails: correct
        point(4, "4", 0),      # passes: wrong
        point(5, "x", True),   # judge error
        point(6, "3", False),  # passes (score == threshold): wrong
    ])
    result = evaluate(rule, load_labels(path), FakeEngineForOrchestrationTest(), max_retries=0)
    assert (result.kind, result.n_items, result.n_judged, result.errors, result.ties) == ("pointwise", 6, 5, 1, None)
    # predicted [T, F, F, T, T] vs gold [T, T, F, F, F] -> 2/5; pe = (3*2 + 2*3)/25 = 0.48
    assert result.agreement == pytest.approx(2 / 5)
    assert result.accuracy == pytest.approx(2 / 6)
    assert result.kappa == pytest.approx((0.4 - 0.48) / 0.52)
    assert result.details["score_histogram"] == {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1, "error": 1}
    assert "ties" not in result.summary()


def test_all_errors_leave_agreement_and_kappa_undefined(tmp_path: Path, rule: JudgeRule):
    path = write_json(tmp_path / "pairs.json", [pair(1, "x", "5", 1), pair(2, "4", "x", 2)])
    result = evaluate(rule, load_labels(path), FakeEngineForOrchestrationTest(), max_retries=0, mode="pointwise")
    assert (result.errors, result.agreement, result.accuracy, result.kappa) == (2, None, 0.0, None)
    assert "agreement n/a" in result.summary()


class FakePairJudgeForOrchestrationTest(ChatBackend):
    """Pairwise orchestration test only: picks the response whose [[k]] marker is higher; on equal
    markers it picks A (a position bias, so the swapped call disagrees); [[x]] anywhere is unparsable."""

    model_name = "fake-orchestration"

    def __init__(self):
        self.requests = []

    def chat(self, requests, on_progress=None):
        results = []
        for req in requests:
            self.requests.append(req)
            user = req.messages[1]["content"]
            a, b = re.findall(r"\[\[(\d|x)\]\]", user)
            if "x" in (a, b):
                text = "{not json"
            else:
                text = json.dumps({"rationale": "scripted", "better": "B" if b > a else "A"})
            results.append(ChatResult([Completion(text, "stop", 9)], prompt_tokens=80))
        return results


def test_pairwise_mode_asks_both_orders_and_calls_disagreement_a_tie(tmp_path: Path, rule: JudgeRule):
    path = write_json(tmp_path / "pairs.json", [
        pair(1, "5", "2", 1),  # both orders pick output 1: correct
        pair(2, "1", "4", 2),  # both pick output 2: correct
        pair(3, "2", "3", 1),  # both pick 2: wrong
        pair(4, "3", "3", 2),  # A both times = output 1, then output 2: tie (position bias)
        pair(5, "x", "5", 1),  # unparsable: error after retries
    ])
    engine = FakePairJudgeForOrchestrationTest()
    progress: list[int] = []
    result = evaluate(rule, load_labels(path), engine, max_retries=1, on_progress=progress.append)
    assert result.mode == "pairwise" and sum(progress) == 10
    assert len(engine.requests) == 10 + 2  # pair 5's two calls retried once each
    first = engine.requests[0].messages[1]["content"]
    assert first.index("first [[5]]") < first.index("second [[2]]")  # output 1 shown as A ...
    swapped = engine.requests[1].messages[1]["content"]
    assert swapped.index("second [[2]]") < swapped.index("first [[5]]")  # ... then as B
    assert engine.requests[0].json_schema["properties"]["better"]["enum"] == ["A", "B"]
    assert "toy_eval" in engine.requests[0].messages[0]["content"]  # the rule's rubric
    assert (result.n_items, result.errors, result.ties, result.decided) == (5, 1, 1, 3)
    assert (result.agreement, result.accuracy) == (pytest.approx(2 / 3), pytest.approx(2 / 5))
    assert result.position_consistency == pytest.approx(3 / 4)  # pair 4 disagreed; pair 5 had no answer
    assert result.details["predicted"] == {"1": 1, "2": 2, "tie": 1, "error": 1}
    assert result.details["choices"] == {"A": 5, "B": 3, "error": 2}
    assert "position consistency 0.750" in result.summary()
    with Store(tmp_path / "e.duckdb") as store:
        eval_id = store_eval(store, rule, result, "m", path)
        assert store.frame("SELECT mode, position_consistency FROM judge_evals WHERE eval_id = ?",
                           [eval_id]).rows() == [("pairwise", pytest.approx(0.75))]


class FakeLetterJudgeForOrchestrationTest(ChatBackend):
    """pairwise_letter orchestration test only: a letter with log probabilities. P(A) leans to A by
    `bias` and to the response with the higher [[k]] marker by 0.1 per point of difference."""

    model_name = "fake-orchestration"

    def __init__(self, bias: float):
        self.bias, self.requests = bias, []

    def chat(self, requests, on_progress=None):
        results = []
        for req in requests:
            self.requests.append(req)
            a, b = (int(k) for k in re.findall(r"\[\[(\d)\]\]", req.messages[1]["content"]))
            p_a = min(max(0.5 + self.bias + 0.1 * (a - b), 0.01), 0.99)
            letter = "A" if p_a >= 0.5 else "B"
            top = [{"A": math.log(p_a), "B": math.log(1 - p_a)}]
            results.append(ChatResult([Completion(letter, "stop", 1, top_logprobs=top)], prompt_tokens=80))
        return results


def test_pairwise_letter_mode_decides_by_the_order_averaged_probability(tmp_path: Path, rule: JudgeRule):
    path = write_json(tmp_path / "pairs.json", [
        pair(1, "5", "2", 1),  # output 1 better by 3 points: wins in spite of the judge's lean to A
        pair(2, "2", "4", 2),  # output 2 better: wins although A is picked in both orders
        pair(3, "3", "3", 1),  # equal: the lean cancels, P = 0.5: a tie
    ])
    engine = FakeLetterJudgeForOrchestrationTest(bias=0.3)
    result = evaluate(rule, load_labels(path), engine, mode="pairwise_letter")
    req = engine.requests[0]
    assert req.choice == ("A", "B") and req.json_schema is None
    assert (req.sampling.temperature, req.sampling.max_tokens, req.sampling.logprobs) == (0.0, 1, 5)
    assert "one letter" in req.messages[0]["content"] and "JSON" not in req.messages[0]["content"]
    assert result.details["predicted"] == {"1": 1, "2": 1, "tie": 1}
    assert (result.ties, result.decided, result.agreement) == (1, 2, 1.0)
    # Every call picked A (the lean): a plain vote would call pairs 1 and 2 ties.
    assert result.details["choices"] == {"A": 6} and result.position_consistency == 0.0
    assert "position consistency 0.000" in result.summary()


def test_a_letter_reply_without_log_probabilities_counts_as_certain():
    from judges.pairwise import parse_letter

    assert parse_letter("B", None).p_a == 0.0 and parse_letter("A", [{}]).p_a == 1.0
    assert parse_letter(" A", [{" A": math.log(0.6), "A": math.log(0.2), "B": math.log(0.2)}]).p_a == pytest.approx(0.8)
    assert not parse_letter("C", None).ok


def test_pairwise_mode_needs_a_pairwise_set(tmp_path: Path, rule: JudgeRule):
    path = write_jsonl(tmp_path / "points.jsonl", [point(1, "5", True)])
    with pytest.raises(ConfigError, match="pairwise mode needs a pairwise label set"):
        evaluate(rule, load_labels(path), FakePairJudgeForOrchestrationTest(), mode="pairwise")


# --- store and calibration gate -------------------------------------------------------------------


def test_store_eval_row_and_calibration_gate(tmp_path: Path, rule: JudgeRule):
    path = write_json(tmp_path / "pairs.json", [pair(1, "5", "1", 1), pair(2, "5", "1", 2), pair(3, "2", "2", 1)])
    result = evaluate(rule, load_labels(path), FakeEngineForOrchestrationTest(), mode="pointwise")
    assert (result.agreement, result.ties) == (0.5, 1)
    with Store(tmp_path / "c.duckdb") as store:
        assert "no pointwise eval of toy_eval v3 by m yet" in calibration_gap(store, rule, "m")
        eval_id = store_eval(store, rule, result, "fake-orchestration", path)
        assert "no pointwise eval" in calibration_gap(store, rule, "m")  # another judge model's eval does not count
        store_eval(store, rule, result, "m", path)
        assert "best pointwise agreement 0.500 by m < 0.6" in calibration_gap(store, rule, "m")
        row = store.frame("SELECT * FROM judge_evals WHERE eval_id = ?", [eval_id]).to_dicts()[0]
        assert {k: row[k] for k in ("rule", "rule_version", "model", "labels", "kind", "n_items", "n_judged",
                                    "errors", "ties", "agreement", "accuracy")} == {
            "rule": "toy_eval", "rule_version": 3, "model": "fake-orchestration", "labels": str(path),
            "kind": "pairwise", "n_items": 3, "n_judged": 3, "errors": 0, "ties": 1, "agreement": 0.5,
            "accuracy": pytest.approx(1 / 3)}
        assert row["created_at"].tzinfo is not None
        assert store.scalar("SELECT details->>'$.subsets.pairs.ties' FROM judge_evals") == "1"

        # A better eval of another rule version does not count; one of this version does.
        other = dataclasses.replace(result, rule_version=4, agreement=0.9)
        store_eval(store, rule.model_copy(update={"version": 4}), other, "m", path)
        assert calibration_gap(store, rule, "m") is not None
        # ... nor one in the other mode
        store_eval(store, rule, dataclasses.replace(result, agreement=0.9, mode="pairwise"), "m", path)
        assert calibration_gap(store, rule, "m") is not None
        store_eval(store, rule, dataclasses.replace(result, agreement=0.6), "m", path)
        assert calibration_gap(store, rule, "m") is None
        assert store.count("judge_evals") == 5
        pairwise_rule = rule.model_copy(update={"calibration": rule.calibration.model_copy(update={"mode": "pairwise"})})
        assert calibration_gap(store, pairwise_rule, "m") is None


def test_store_eval_refuses_a_result_of_another_rule(tmp_path: Path, rule: JudgeRule):
    result = EvalResult("other", 1, "pointwise", 1, 1, 0, None, 1.0, 1.0, 0.0)
    with Store(tmp_path / "c.duckdb") as store, pytest.raises(ValueError, match="not toy_eval v3"):
        store_eval(store, rule, result, "m", "x.jsonl")


# --- real engine ----------------------------------------------------------------------------------


@pytest.mark.engine
def test_logical_completeness_on_llmbar_natural_with_the_real_engine(vllm_engine):
    result = evaluate(load_rule("logical_completeness"), load_labels(NATURAL, limit=6), vllm_engine, mode="pointwise")
    assert result.n_items == 6
    assert result.decided + result.ties + result.errors == 6
    assert result.n_judged == result.decided + result.ties
    for metric in (result.agreement, result.accuracy):
        assert metric is None or 0.0 <= metric <= 1.0
    assert result.kappa is None or -1.0 <= result.kappa <= 1.0
    assert sum(result.details["score_histogram"].values()) == 12
    assert result.details["mean_prompt_tokens"] > 0
