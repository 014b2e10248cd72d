"""The CoT rules added for cleaning: redundancy, completeness, language, self-identity; the
one-pass scanner behind repetition; the datatrove adapter both ways; and all cheap rules
together on good CoT (the calibration the defaults are based on)."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest

from filters.base import RuleResult
from filters.completeness import CompletenessFilter
from filters.language import LanguageFilter
from filters.redundancy import RedundancyFilter
from filters.format_compliance import FormatComplianceFilter
from tests.rule_sets import cheap_rules
from filters.repetition import RepetitionFilter
from filters.self_identity import SelfIdentityFilter
from filters.text.stats import dup_ngram_coverage, scan, top_ngram_share
from schemas.config import DatatroveFilter, FilterConfig
from tests.conftest import DATA


def good_cot() -> pl.DataFrame:
    """800 Qwen2.5-Math responses to MATH problems, as samples (reasoning = the response,
    answer = its last paragraph, as a reasoning model's answer restates its conclusion)."""
    rows = [json.loads(line) for line in (DATA / "labels" / "math_cot_responses_labelled.jsonl").open()]
    samples = []
    for r in rows:
        for text in r["code"]:
            answer = text.strip().split("\n\n")[-1]
            samples.append({
                "sample_id": f"{r['idx']}-{len(samples)}", "reasoning": text, "answer": answer,
                "requested_format": "boxed",
                "raw_text": f"<think>\n{text}\n</think>\n\n{answer}", "think_closed_by": "model",
                "reasoning_finish": "stop", "finish_reason": "stop", "domain": "math",
                "question_text": r["question"], "level": int(r["level"].split()[-1]) / 5,
            })
    return pl.DataFrame(samples)


# --- calibration: good CoT passes -------------------------------------------------------------


def test_all_cheap_rules_keep_at_least_99_percent_of_good_cot():
    batch = good_cot()
    kept = pl.Series([True] * batch.height)
    failures = {}
    for rule in cheap_rules(FilterConfig()):
        if rule.name == "format_compliance":  # instruction following, not CoT quality: tested below
            continue
        out = rule.check_batch(batch)
        assert out.height == batch.height
        kept &= out["passed"]
        failures[rule.name] = int((~out["passed"]).sum())
    assert kept.sum() / batch.height >= 0.99, failures
    # Rules that have no business firing on clean English math CoT do not fire at all.
    for name in ("structure", "truncation", "length", "completeness", "language", "self_identity", "redundancy",
                 "judge_bait"):
        assert failures[name] == 0, (name, failures)


def test_format_compliance_on_responses_prompted_for_boxed_answers():
    # Qwen2.5-Math's CoT prompt asks for the final answer within \boxed{}: 795 of 800 comply.
    # The five that do not: three degenerate into token soup (one short enough to look terse),
    # two end in plain prose.
    batch = good_cot()
    out = FormatComplianceFilter().check_batch(batch)
    failed = out.filter(~out["passed"])
    assert failed.height == 5
    assert sorted(failed["reason"]) == ["asked for boxed, wrote prose"] * 2 + [
        "asked for boxed, wrote terse_final", "asked for boxed, wrote unknown", "asked for boxed, wrote unknown"]


# --- redundancy ---------------------------------------------------------------------------------


def _r(reasoning, answer="The answer is 42."):
    return RedundancyFilter().check({"reasoning": reasoning, "answer": answer})


def test_redundancy_fails_a_loop_of_self_doubt_and_names_the_count():
    loop = "We compute 6 * 7. Wait, that seems off. Hmm, let me double-check. Alternatively, add 7 six times. " * 6
    result = _r(loop)
    assert not result.passed and result.reason.startswith("24 loop markers")


def test_redundancy_counts_markers_in_other_languages():
    chinese = "我们计算六乘以七。等等，让我再检查一下。不对，重新检查。" * 5
    result = _r(chinese)
    assert not result.passed and "loop markers" in result.reason


def test_redundancy_lets_an_occasional_wait_through():
    text = ("First, 6 * 7 = 42. " + "We multiply the tens and the units carefully and write the partial products. " * 20
            + "Wait, check the carry: no carry is needed. So the product is 42.")
    assert _r(text).passed


def test_redundancy_fails_paragraphs_that_keep_reopening_the_same_way():
    paragraphs = [f"Let me check this again: step {i} gives {i * 2}." for i in range(5)]
    paragraphs += [f"Then we add {i} to the total." for i in range(3)]
    result = _r("\n\n".join(paragraphs))
    assert not result.passed and "re-open the same way" in result.reason


def test_redundancy_fails_reasoning_that_continues_long_after_its_answer():
    text = "So the answer is 1729. " + "Let us verify this with yet another independent method here. " * 40
    result = _r(text, answer="The answer is \\boxed{1729}.")
    assert not result.passed and "after it first stated the final answer" in result.reason
    # The same answer stated at the end is fine.
    ok = _r("Let us compute it with one careful method here. " * 40 + "So the answer is 1729.",
            answer="\\boxed{1729}")
    assert ok.passed


# --- completeness ---------------------------------------------------------------------------------


def test_completeness_scales_with_level_and_skips_unknown_levels():
    rule = CompletenessFilter(min_chars_at_level_0=100, min_chars_at_level_1=500)
    text = "x" * 300
    assert rule.check({"reasoning": text, "level": 0.2}).passed  # needs 180
    hard = rule.check({"reasoning": text, "level": 1.0})
    assert not hard.passed and "needs 500" in hard.reason and hard.score == 300
    assert rule.check({"reasoning": "x", "level": None}).passed  # no level: no judgement


# --- language --------------------------------------------------------------------------------


ENGLISH_Q = "What is six times seven? Please show every step of the computation."


def test_language_fails_a_response_in_another_script_than_the_question():
    result = LanguageFilter().check({"reasoning": "首先我们计算六乘以七，然后检查结果是否正确无误，得到四十二。",
                                     "answer": "四十二", "question_text": ENGLISH_Q})
    assert not result.passed and result.reason == "response written in Han but the question in Latin"


def test_language_fails_mixed_scripts_inside_a_response():
    mixed = ("First we multiply six by seven and then we verify the product carefully. "
             "然后我们检查结果是否正确无误，我们得到四十二这个数字，结果完全正确。")
    result = LanguageFilter().check({"reasoning": mixed, "answer": "42", "question_text": ENGLISH_Q})
    assert not result.passed and result.reason.startswith("mixed scripts")


def test_language_ignores_greek_math_notation_and_handles_batches():
    greek = "Let α + β = π and σ = 2. Then θ ranges over the circle, and we compute λ μ ν carefully."
    batch = pl.DataFrame({"reasoning": [greek, "俄语 Привет мир, как дела у тебя сегодня друг мой дорогой", None],
                          "answer": ["42", "ok", None], "question_text": [ENGLISH_Q, "Привет, как дела?", None]})
    out = LanguageFilter().check_batch(batch)
    assert out["passed"].to_list() == [True, True, True]  # 2nd: Cyrillic answer to a Cyrillic question


# --- self-identification and refusals ------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "As an AI language model, I think the answer is 4.", "I am ChatGPT, a model trained by OpenAI.",
    "I'm Claude and here is my answer.", "作为一个人工智能，我认为答案是4。", "I'm sorry, but I can't help with that request.",
])
def test_self_identity_and_refusals_fail(text):
    assert not SelfIdentityFilter().check({"raw_text": text}).passed


@pytest.mark.parametrize("text", ["The AI in this puzzle is a robot named Claude Shannon's machine.",
                                  "I am sure the answer is 4.", "We cannot divide by zero, so x != 0."])
def test_self_identity_leaves_ordinary_text_alone(text):
    assert SelfIdentityFilter().check({"raw_text": text}).passed


# --- the scanner behind repetition -------------------------------------------------------------


def test_scan_words_match_a_regex_tokenizer():
    texts = ["Hello, World! x^2 + y_1 = 3.5", "Ünïcode wörds ça 数学 ok", "", None]
    sc = scan(pl.Series(texts))
    for i, text in enumerate(texts):
        expected = [w.lower() for w in re.findall(r"[A-Za-z0-9\u0080-\U0010FFFF]+", text or "")]
        assert sc.words.offsets[i + 1] - sc.words.offsets[i] == len(expected)
        lengths = sc.words.chars[sc.words.offsets[i]:sc.words.offsets[i + 1]]
        assert list(lengths) == [len(w.encode()) for w in expected]


def test_scan_lines_are_stripped_and_short_lines_ignored():
    sc = scan(pl.Series(["  a line that is long enough  \na line that is long enough\n\\[\n\\]\nshort"]))
    assert sc.lines.offsets.tolist() == [0, 2] and sc.lines.hashes[0] == sc.lines.hashes[1]


def test_ngram_kernels_on_a_known_text():
    text = "one two three four five six seven eight nine ten " * 3 + "eleven twelve"
    sc = scan(pl.Series([text]))
    share, longest = dup_ngram_coverage(sc.words.hashes, sc.words.chars, sc.words.offsets, 10)
    covered = 3 * sum(len(w) for w in "one two three four five six seven eight nine ten".split())
    assert share[0] == pytest.approx(covered / (covered + len("eleventwelve")))
    assert longest[0] == 30
    top = top_ngram_share(sc.words.hashes, sc.words.chars, sc.words.offsets, 2)
    # Every 2-gram of the cycle repeats 3 times; the heaviest is "seven eight".
    assert top[0] == pytest.approx(3 * len("seveneight") / (covered + len("eleventwelve")))


def test_repetition_catches_a_looping_sample_and_not_an_answer_that_restates():
    loop = "\n".join(f"{i}. The answer is 1 cat, 1 dog and 1 bird in total." for i in range(12))
    assert not RepetitionFilter().check({"reasoning": loop, "answer": "1"}).passed
    reasoning = "We add the numbers one by one to get the sum.\nThe total of the three numbers is 42."
    restated = RepetitionFilter().check({"reasoning": reasoning, "answer": "The total of the three numbers is 42."})
    assert restated.passed


# --- datatrove adapter, both ways ------------------------------------------------------------------


def test_our_rule_runs_as_a_datatrove_filter():
    from datatrove.data import Document

    from filters.datatrove_adapter import AsDatatrove

    dt = AsDatatrove(SelfIdentityFilter(), batch_size=2)
    good = Document(text="<think>\n6*7=42\n</think>\n\n42", id="a")
    bad = Document(text="<think>\nAs an AI language model I compute\n</think>\n\n42", id="b")
    assert dt.filter(good) is True
    ok, reason = dt.filter(bad)
    assert ok is False and reason.startswith("self-identification")
    kept = list(dt.run(iter([good, bad])))  # a real datatrove pipeline step, with its stats
    assert [d.id for d in kept] == ["a"]
    assert dt.stats["dropped"].total == 1


def test_a_datatrove_filter_runs_as_our_rule_from_config():
    from filters.datatrove_adapter import FromDatatrove

    rule = FromDatatrove.from_config(DatatroveFilter(cls="GopherRepetitionFilter", text="reasoning"))
    assert rule.name == "datatrove_gopher_repetition" and rule.version == 1
    loop = "the same sentence again and again. " * 50
    prose = " ".join(f"word{i}" for i in range(300))
    out = rule.check_batch(pl.DataFrame({"sample_id": ["a", "b"], "reasoning": [loop, prose]}))
    assert out["passed"].to_list() == [False, True]
    assert out["reason"][0].startswith("datatrove ")
    cfg = FilterConfig(datatrove=[DatatroveFilter(cls="GopherRepetitionFilter")])
    assert "datatrove_gopher_repetition" in [r.name for r in cheap_rules(cfg)]
    with pytest.raises(ValueError, match="not a filter"):
        FromDatatrove.from_config(DatatroveFilter(cls="NoSuchFilter"))


def test_disabled_rules_are_skipped_and_unknown_names_rejected():
    names = [r.name for r in cheap_rules(FilterConfig(disabled=["language"]))]
    assert "language" not in names and "structure" in names
    from pipeline.rules import rule_config_errors
    from schemas.config import CurateConfig

    errors = rule_config_errors(CurateConfig(filters=FilterConfig(disabled=["langauge"])))
    assert errors == [(("filters", "disabled"), errors[0][1])] and "unknown rules ['langauge']" in errors[0][1]


def test_single_sample_check_and_batch_agree():
    batch = good_cot().head(20)
    for rule in cheap_rules(FilterConfig()):
        out = rule.check_batch(batch)
        for i, row in enumerate(batch.iter_rows(named=True)):
            single = rule.check(row)
            assert isinstance(single, RuleResult)
            assert (single.passed, single.reason) == (out["passed"][i], out["reason"][i]), rule.name
    assert np.all(np.isfinite(batch["level"].to_numpy()))
