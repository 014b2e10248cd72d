"""The difficulty stage (pipeline/stages/difficulty.py, difficulty_llm.py) on a real DuckDB file:
pass rate, reasoning length of correct samples, the Rasch model, the rank-average combined
score, versions and re-scoring; the LLM rating of questions (orchestration with a fake engine,
one small test on the real model)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jinja2
import jinja2.meta
import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from judges.loader import load_rule
from judges.render import CLOSE, OPEN, render_messages
from pipeline.stages.difficulty import (COMBINED, IRT, LENGTH, PASS_RATE, DifficultyReport, fit_rasch, length_score,
                                        rank_average, score_difficulty)
from pipeline.difficulty.llm_rating import METHOD as LLM, rate_questions, score_llm_rating
from pipeline.store import Store, now
from schemas.chat import ChatBackend, ChatResult, Completion
from schemas.difficulty import DifficultyConfig
from schemas.judge_rule import JudgeRule
from tests.stages.test_store import question_frame, sample_frame, verdicts


def samples(*specs: tuple[str, str, int], model: str = "test-model", cut: tuple[str, ...] = ()) -> pl.DataFrame:
    """(sample_id, question_id, reasoning chars) -> sample rows; `cut`: samples stopped at the budget."""
    frame = sample_frame(*[(sid, qid) for sid, qid, _ in specs])
    return frame.with_columns(
        reasoning=pl.Series([("x" * n) for _, _, n in specs]),
        model=pl.lit(model),
        reasoning_finish=pl.Series(["length" if sid in cut else "stop" for sid, _, _ in specs]),
    )


def answer_match(sample_ids: list[str], passed: list[bool]) -> pl.DataFrame:
    return verdicts(sample_ids, passed, rule="answer_match", stage="verify")


def difficulty(store: Store) -> dict[tuple[str, str, int], tuple[float, int, str]]:
    rows = store.frame("SELECT question_id, method, version, score, n_samples, detail FROM question_difficulty").rows()
    return {(q, m, v): (s, n, d) for q, m, v, s, n, d in rows}


@pytest.fixture()
def store(tmp_path: Path):
    """q1: 3 of 4 correct; q2: none of 2 correct; q3: no reference, nothing verified; q4 (code): 1 of 2."""
    with Store(tmp_path / "curate.duckdb") as s:
        s.insert("questions", question_frame(("q1", "math"), ("q2", "math"), ("q3", "math"), ("q4", "code")))
        s.insert("samples", samples(("a1", "q1", 100), ("a2", "q1", 2000), ("a3", "q1", 5000), ("a4", "q1", 9000),
                                    ("b1", "q2", 300), ("b2", "q2", 700),
                                    ("c1", "q3", 4000), ("c2", "q3", 6000), ("c3", "q3", 20000),
                                    ("d1", "q4", 50), ("d2", "q4", 800), cut=("a4", "c3")))
        s.insert("verdicts", answer_match(["a1", "a2", "a3", "a4", "b1", "b2"], [False, True, True, True, False, False]))
        s.insert("verdicts", verdicts(["d1", "d2"], [True, False], rule="code_tests", stage="verify"))
        yield s


# --- the cheap signals ---------------------------------------------------------------------------------------


def test_pass_rate_and_reasoning_length_rows(store: Store):
    report = score_difficulty(store, "run-1", ["q1", "q2", "q3", "q4"])
    assert (report.pass_rate, report.reasoning_length) == (3, 4)
    d = difficulty(store)
    assert d[("q1", PASS_RATE, 1)] == (0.25, 4, "3/4 samples correct")
    assert d[("q2", PASS_RATE, 1)] == (1.0, 2, "0/2 samples correct")
    assert d[("q4", PASS_RATE, 1)] == (0.5, 2, "1/2 samples correct")
    assert ("q3", PASS_RATE, 1) not in d  # no reference: no pass rate
    # Reasoning length of the correct samples only (a2, a3, a4: median 5000), one of them cut.
    score, n, detail = d[("q1", LENGTH, 2)]
    assert n == 3 and detail == "median reasoning 5000 chars over 3 correct samples, 1 cut at the token budget"
    assert score == pytest.approx(math.log(5000 / 200) / math.log(100))
    # None correct: all samples, and the detail says so.
    score, n, detail = d[("q2", LENGTH, 2)]
    assert (n, detail) == (2, "median reasoning 500 chars over all 2 samples (none correct)")
    assert score == pytest.approx(math.log(500 / 200) / math.log(100))
    assert d[("q3", LENGTH, 2)][1:] == (3, "median reasoning 6000 chars over all 3 samples (nothing verified), "
                                           "1 cut at the token budget")
    assert d[("q4", LENGTH, 2)][1:] == (1, "median reasoning 50 chars over 1 correct samples")
    assert d[("q4", LENGTH, 2)][0] == 0.0  # below the lower bound
    # Every row carries its run, and scores sit in 0..1.
    rows = store.frame("SELECT * FROM question_difficulty")
    assert set(rows["run_id"]) == {"run-1"} and rows["score"].is_between(0, 1).all()


def test_length_score_is_log_scaled_between_the_bounds():
    chars = pl.DataFrame({"c": [0, 50, 200, 2000, 20000, 10**6]})
    scores = chars.select(length_score(pl.col("c"), 200, 20000))["c"].to_list()
    assert scores == pytest.approx([0.0, 0.0, 0.0, 0.5, 1.0, 1.0])


def test_only_the_given_questions_get_signal_rows(store: Store):
    score_difficulty(store, "run-1", ["q1"])
    assert {(q, m) for q, m, _ in difficulty(store) if m != COMBINED} == {("q1", PASS_RATE), ("q1", LENGTH)}


def test_rescoring_replaces_rows_and_new_verdicts_change_them(store: Store):
    score_difficulty(store, "run-1", ["q1", "q2", "q3", "q4"])
    before = store.count("question_difficulty")
    again = score_difficulty(store, "run-2", ["q1", "q2", "q3", "q4"])
    assert store.count("question_difficulty") == before
    assert again.combined == 0  # nothing changed: no combined row rewritten
    dup = store.scalar("SELECT count(*) FROM (SELECT question_id, method, version FROM question_difficulty "
                       "GROUP BY ALL HAVING count(*) > 1)")
    assert dup == 0
    # A newer verification version says b1 was right after all: q2's rows change, in place.
    store.insert("verdicts", verdicts(["b1"], [True], rule="answer_match", stage="verify", version=2))
    third = score_difficulty(store, "run-3", ["q2"])
    d = difficulty(store)
    assert d[("q2", PASS_RATE, 1)] == (0.5, 2, "1/2 samples correct")
    assert d[("q2", LENGTH, 2)][1:] == (1, "median reasoning 300 chars over 1 correct samples")
    assert third.combined == 0  # q2 still the hardest by pass rate and the shortest: ranks unchanged
    # Both right: q2 is now easier than q1 by pass rate, so the combined ranks move.
    store.insert("verdicts", verdicts(["b2"], [True], rule="answer_match", stage="verify", version=2))
    third = score_difficulty(store, "run-3", ["q2"])
    assert store.count("question_difficulty") == before
    assert store.scalar("SELECT run_id FROM question_difficulty WHERE question_id = 'q2' AND method = 'pass_rate'") == "run-3"
    assert third.combined == 2  # q1 and q2 swap pass-rate ranks; q3 and q4 are unchanged
    assert difficulty(store)[("q2", COMBINED, 1)][0] == pytest.approx(0.0)


def test_older_versions_stay_and_do_not_enter_the_combined_score(store: Store):
    old = pl.DataFrame({"question_id": ["q1"], "method": [LENGTH], "version": [1], "score": [0.99], "n_samples": [4],
                        "detail": ["v1"], "run_id": ["run-0"], "created_at": [now()]},
                       schema_overrides={"version": pl.Int32, "n_samples": pl.Int32})
    store.insert("question_difficulty", old)
    score_difficulty(store, "run-1", ["q1", "q2"])
    d = difficulty(store)
    assert d[("q1", LENGTH, 1)] == (0.99, 4, "v1")
    assert "reasoning_length" in d[("q1", COMBINED, 1)][2] and d[("q1", COMBINED, 1)][2].count("reasoning_length") == 1


def test_signals_and_combination_follow_the_config(store: Store):
    report = score_difficulty(store, "run-1", ["q1", "q2"], config=DifficultyConfig(signals=["pass_rate"],
                                                                                    combine="none"))
    assert (report.pass_rate, report.reasoning_length, report.combined) == (2, 0, 0)
    assert {m for _, m, _ in difficulty(store)} == {PASS_RATE}
    # llm_rating configured but no engine given: skipped, and said so.
    report = score_difficulty(store, "run-1", ["q1"], config=DifficultyConfig(signals=["llm_rating"]))
    assert report.llm_skipped == "no engine given" and report.llm_rating == 0
    json.dumps(vars(report))  # the flow records it in runs.counts


def test_config_validation():
    assert DifficultyConfig().signals == ["pass_rate", "reasoning_length", "irt"]
    with pytest.raises(ValidationError):
        DifficultyConfig(signals=["vibes"])
    with pytest.raises(ValidationError):
        DifficultyConfig(reasoning_length_min_chars=500, reasoning_length_max_chars=400)
    with pytest.raises(ValidationError):
        DifficultyConfig(weights={"pass_rate": -1})


# --- combined: rank average ------------------------------------------------------------------------------------


def signals(*rows: tuple[str, str, str, float]) -> pl.DataFrame:
    return pl.DataFrame([{"question_id": q, "domain": d, "method": m, "score": s, "n_samples": 4}
                         for q, d, m, s in rows])


def combined(frame: pl.DataFrame) -> dict[str, float]:
    return dict(frame.select("question_id", "score").rows())


def test_rank_average_by_hand():
    frame = signals(
        ("a", "math", PASS_RATE, 1.0), ("b", "math", PASS_RATE, 1.0), ("c", "math", PASS_RATE, 0.5),
        ("a", "math", LENGTH, 0.1), ("b", "math", LENGTH, 0.9), ("c", "math", LENGTH, 0.5), ("d", "math", LENGTH, 0.3),
    )
    out = rank_average(frame)
    # pass_rate ranks: c 0, a and b tied at 0.75; reasoning_length ranks: a 0, d 1/3, c 2/3, b 1.
    assert combined(out) == pytest.approx({"a": 0.375, "b": 0.875, "c": 1 / 3, "d": 1 / 3})
    detail = dict(out.select("question_id", "detail").rows())
    assert detail["a"] == "rank average of 2 signal(s): pass_rate 0.75, reasoning_length 0.0"
    assert detail["d"] == "rank average of 1 signal(s): reasoning_length 0.333"


def test_rank_average_weights_domains_constants_and_irt():
    frame = signals(("a", "math", PASS_RATE, 1.0), ("b", "math", PASS_RATE, 0.0),
                    ("a", "math", LENGTH, 0.2), ("b", "math", LENGTH, 0.8))
    assert combined(rank_average(frame)) == pytest.approx({"a": 0.5, "b": 0.5})
    assert combined(rank_average(frame, {LENGTH: 3.0})) == pytest.approx({"a": 0.25, "b": 0.75})
    assert combined(rank_average(frame, {PASS_RATE: 0.0})) == pytest.approx({"a": 0.0, "b": 1.0})
    # Ranks are within a domain: a lone code question sits at 0.5 whatever its score.
    lone = signals(("a", "math", LENGTH, 0.1), ("b", "math", LENGTH, 0.2), ("z", "code", LENGTH, 0.99))
    assert combined(rank_average(lone)) == pytest.approx({"a": 0.0, "b": 1.0, "z": 0.5})
    # A signal constant over the domain (the tiny model fails everything) leaves the order to the others.
    flat = signals(*[(q, "math", PASS_RATE, 1.0) for q in "abc"],
                   *[(q, "math", LENGTH, s) for q, s in zip("abc", (0.3, 0.1, 0.2))])
    scores = combined(rank_average(flat))
    assert sorted(scores, key=scores.get) == ["b", "c", "a"] and scores["a"] == pytest.approx(0.75)
    # irt replaces pass_rate where both exist (same thing measured twice would count double).
    both = signals(("a", "math", PASS_RATE, 0.0), ("b", "math", PASS_RATE, 1.0),
                   ("a", "math", IRT, 0.9), ("b", "math", IRT, 0.1))
    out = rank_average(both)
    assert combined(out) == pytest.approx({"a": 1.0, "b": 0.0})
    assert "pass_rate" not in "".join(out["detail"])


def test_combined_rows_in_the_store(store: Store):
    score_difficulty(store, "run-1", ["q1", "q2", "q3", "q4"])
    d = difficulty(store)
    # q4 is the only code question: 0.5 on both of its signals.
    assert d[("q4", COMBINED, 1)][0] == pytest.approx(0.5)
    # math: pass_rate q1 0.25 < q2 1.0; length q2 (500) < q1 (5000) < q3 (6000).
    assert d[("q1", COMBINED, 1)][0] == pytest.approx((0 + 0.5) / 2)
    assert d[("q2", COMBINED, 1)][0] == pytest.approx((1 + 0) / 2)
    assert d[("q3", COMBINED, 1)][0] == pytest.approx(1.0)
    assert d[("q3", COMBINED, 1)][2] == "rank average of 1 signal(s): reasoning_length 1.0"
    assert d[("q1", COMBINED, 1)][1] == 4  # the most samples behind any of its signals


# --- item response model -----------------------------------------------------------------------------------------


def test_rasch_fit_recovers_difficulty_order():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    theta = {"weak": -1.0, "mid": 0.0, "strong": 1.5}
    b = rng.normal(0, 1.5, 60)
    rows = []
    for m, t in theta.items():
        for q in range(60):
            if m == "weak" and q % 2:  # the weak model did not try half the questions
                continue
            p = 1 / (1 + math.exp(b[q] - t))
            rows.append({"model": m, "question_id": f"q{q:02d}", "correct": int(rng.binomial(8, p)), "trials": 8})
    fitted = fit_rasch(pl.DataFrame(rows)).sort("question_id")
    assert spearmanr(fitted["b"], b).statistic > 0.85
    assert fitted["score"].is_between(0, 1).all()
    assert spearmanr(fitted["score"], fitted["b"]).statistic == pytest.approx(1.0)


def test_rasch_separates_what_pass_rate_confuses():
    # x: only a weak model tried it (1/4); y: a strong model tried it too and failed it more often.
    counts = pl.DataFrame({"model": ["weak", "weak", "strong", "strong"], "question_id": ["x", "y", "y", "z"],
                           "correct": [1, 1, 1, 4], "trials": [4, 4, 4, 4]})
    fitted = dict(fit_rasch(counts).select("question_id", "score").rows())
    assert fitted["y"] > fitted["x"]


def test_irt_rows_need_two_models(store: Store):
    report = score_difficulty(store, "run-1", ["q1", "q2"])
    assert report.irt == 0 and not [k for k in difficulty(store) if k[1] == IRT]
    store.insert("samples", samples(("e1", "q1", 800), ("e2", "q2", 900), model="other-model"))
    store.insert("verdicts", answer_match(["e1", "e2"], [True, True]))
    report = score_difficulty(store, "run-2", ["q1", "q2"])
    d = difficulty(store)
    assert report.irt == 3  # every question with verified samples: q1, q2, and q4 (code)
    assert d[("q2", IRT, 1)][0] > d[("q1", IRT, 1)][0]
    assert d[("q1", IRT, 1)][1] == 5 and "by 2 of 2 models" in d[("q1", IRT, 1)][2]
    assert "irt" in d[("q1", COMBINED, 1)][2] and "pass_rate" not in d[("q1", COMBINED, 1)][2]


# --- LLM rating of questions ---------------------------------------------------------------------------------------


def test_difficulty_rating_rule_is_a_question_rule():
    rule = load_rule("difficulty_rating")
    assert rule.target == "question" and rule.version == 1
    assert (rule.scale.min, rule.scale.max) == (1, 10) and sorted(rule.scale.anchors) == list(range(1, 11))
    assert rule.threshold == 1  # never drops anything if someone runs it as a sample judge
    assert rule.sampling.temperature == 0.0
    variables = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(rule.prompt))
    assert variables <= {"question", "domain", "reference", "open", "close"} and "question" in variables
    user = render_messages(rule, {"question_text": "QTEXT What is 2 + 2?", "domain": "math"})[1]["content"]
    assert f"{OPEN}question\nQTEXT What is 2 + 2?\n{CLOSE}question" in user
    system = render_messages(rule, {"question_text": "", "domain": None})[0]["content"]
    assert len(system) + len(user) < 3000
    assert rule.output_schema()["properties"]["score"] == {"type": "integer", "minimum": 1, "maximum": 10}


def test_question_rules_cannot_select_by_sample_properties():
    base = {"name": "x", "version": 1, "description": "d", "prompt": "{{ question }}", "threshold": 1,
            "scale": {"min": 1, "max": 10, "anchors": {1: "easy", 10: "hard"}}, "target": "question"}
    JudgeRule(**base)
    with pytest.raises(ValidationError, match="properties of samples"):
        JudgeRule(**base, applies_to={"formats": ["boxed"]})
    assert JudgeRule(**(base | {"target": "sample"})).target == "sample"
    assert load_rule("logical_completeness").target == "sample"  # the default


class FakeEngineForOrchestrationTest(ChatBackend):
    """Orchestration unit test only: replies from a script keyed by question text and attempt."""

    model_name = "fake-orchestration"

    def __init__(self, replies: dict[str, list[str]]):
        self.replies = replies
        self.calls: list[int] = []  # requests per engine call

    def chat(self, requests, on_progress=None):
        self.calls.append(len(requests))
        out = []
        for r in requests:
            key = next(k for k in self.replies if k in r.messages[1]["content"])
            text = self.replies[key].pop(0) if len(self.replies[key]) > 1 else self.replies[key][0]
            out.append(ChatResult([Completion(text, "stop", 7)], prompt_tokens=40))
        return out


def test_llm_rating_orchestration(store: Store):
    rule = load_rule("difficulty_rating")
    engine = FakeEngineForOrchestrationTest({
        "Question q1?": ['{"rationale": "two steps", "score": 7}'],
        "Question q2?": ["not json", '{"rationale": "retry worked", "score": 1}'],
        "Question q3?": ["never parses"],
        "Question q4?": ['{"rationale": "off the scale", "score": 11}'],
    })
    report = score_llm_rating(store, "run-1", ["q1", "q2", "q3", "q4"], engine, rule, batch_size=3, max_retries=1)
    assert (report.asked, report.rated, report.errors) == (4, 2, 2)
    # The first request alone (it warms the prefix cache with the rubric), the rest of the batch of 3,
    # its retries, then the last question and its retry.
    assert engine.calls == [1, 2, 2, 1, 1]
    assert len(report.error_examples) == 2 and report.prompt_tokens == 40 * 7
    d = difficulty(store)
    assert d[("q1", LLM, 1)] == (pytest.approx(6 / 9), 0,
                                  "7/10 by fake-orchestration (difficulty_rating v1): two steps")
    assert d[("q2", LLM, 1)][0] == 0.0
    assert ("q3", LLM, 1) not in d and ("q4", LLM, 1) not in d  # errors: no row, never a made-up score
    # Rated questions are not rated again; the failed ones are retried by the next call.
    again = score_llm_rating(store, "run-2", ["q1", "q2", "q3", "q4"], engine, rule, max_retries=0)
    assert (again.asked, again.already_rated, again.rated, again.errors) == (2, 2, 0, 2)
    # A sample judge is refused.
    with pytest.raises(ValueError, match="target: question"):
        rate_questions(load_rule("correctness"), [{"question_id": "q1", "text": "x"}], engine)


def test_llm_rating_rates_only_the_questions_its_rule_applies_to(store: Store):
    """applies_to.domains and requires_reference select questions (q4 is code, q5 has no reference)."""
    store.insert("questions", question_frame(("q5", "math")).with_columns(reference_answer=pl.lit(None, pl.String)))
    rule = load_rule("difficulty_rating")
    rule = rule.model_copy(update={"applies_to": rule.applies_to.model_copy(
        update={"domains": ["math"], "requires_reference": True})})
    engine = FakeEngineForOrchestrationTest({f"Question q{i}?": ['{"rationale": "r", "score": 5}'] for i in range(1, 6)})
    report = score_llm_rating(store, "run-1", ["q1", "q2", "q3", "q4", "q5"], engine, rule)
    assert (report.asked, report.rated) == (3, 3)
    assert sorted(q for q, m, _ in difficulty(store) if m == LLM) == ["q1", "q2", "q3"]


def test_llm_rating_enters_the_combined_score(store: Store):
    engine = FakeEngineForOrchestrationTest({f"Question q{i}?": [f'{{"rationale": "r", "score": {i}}}']
                                             for i in range(1, 5)})
    config = DifficultyConfig(signals=["llm_rating"])
    report = score_difficulty(store, "run-1", ["q1", "q2", "q3"], config=config, engine=engine,
                              llm_rule=load_rule("difficulty_rating"))
    assert (report.llm_rating, report.llm_errors) == (3, 0)
    d = difficulty(store)
    assert [d[(q, COMBINED, 1)][0] for q in ("q1", "q2", "q3")] == pytest.approx([0.0, 0.5, 1.0])
    assert isinstance(report, DifficultyReport)


@pytest.mark.engine
@pytest.mark.timeout(900)
def test_llm_rating_with_the_real_model(vllm_engine, store: Store):
    rule = load_rule("difficulty_rating")
    report = score_llm_rating(store, "run-1", ["q1", "q2", "q3"], vllm_engine, rule, max_retries=0)
    assert report.asked == 3 and report.rated + report.errors == 3
    assert report.prompt_tokens > 0 and report.completion_tokens > 0
    rows = store.frame("SELECT * FROM question_difficulty WHERE method = 'llm_rating'")
    assert rows.height == report.rated
    for score, n, detail, version in rows.select("score", "n_samples", "detail", "version").rows():
        rating = round(score * 9) + 1
        assert 0 <= score <= 1 and n == 0 and version == 1
        assert detail.startswith(f"{rating}/10 by {vllm_engine.model_name} (difficulty_rating v1)")


def test_a_rating_rule_of_ones_own_from_a_rules_dir(store: Store, tmp_path: Path):
    import yaml

    from judges.loader import BUILTIN_DIR

    spec = yaml.safe_load((BUILTIN_DIR / "difficulty_rating.yaml").read_text())
    (tmp_path / "my_rating.yaml").write_text(yaml.safe_dump(spec | {"name": "my_rating", "version": 3}))
    engine = FakeEngineForOrchestrationTest({"Question": ['{"rationale": "r", "score": 4}']})
    # The stage looks the rule up in the run's judges.rules_dir (through its context).
    from pipeline.stage import RunState, StageContext
    from pipeline.stages import difficulty as difficulty_stage
    from schemas.config import CurateConfig, JudgeConfig

    config = CurateConfig(difficulty=DifficultyConfig(signals=["llm_rating"], llm_rule="my_rating"),
                          judges=JudgeConfig(rules_dir=str(tmp_path)))
    run = RunState("run-1", config, question_ids=["q1"])
    run.provide_engine(engine)
    report = difficulty_stage.run(StageContext(store, run)).counts
    assert report["llm_rating"] == 1
    assert difficulty(store)[("q1", LLM, 3)] == (pytest.approx(1 / 3), 0, "4/10 by fake-orchestration (my_rating v3): r")
