"""Rule filters (filters/): hand-written positive and negative samples, the batch contract,
the repetition thresholds against real good CoT, and answer verification against labels."""

from __future__ import annotations

import json
import re
from itertools import islice

import polars as pl
import pytest

from filters.answer_match import AnswerMatch, match_choice, options_of, verifiable
from filters.base import RESULT_SCHEMA, RuleResult
from filters.length import LengthFilter
from tests.rule_sets import cheap_rules
from filters.repetition import RepetitionFilter, repetition_stats
from filters.text.stats import dup_ngram_coverage, scan, top_ngram_share
from filters.structure import StructureFilter
from filters.truncation import TruncationFilter
from filters.length import LengthBounds
from schemas.config import FilterConfig
from tests.conftest import DATA

# --- helpers ------------------------------------------------------------------------------

GOOD_REASONING = "Alice has 3 apples and Bob has 5 apples. Together they have 3 + 5 = 8 apples."


def structure_row(**over) -> dict:
    row = {
        "reasoning": GOOD_REASONING,
        "answer": "The answer is 8.",
        "think_closed_by": "model",
        "raw_text": f"<think>\n{GOOD_REASONING}\n</think>\n\nThe answer is 8.",
    }
    row.update(over)
    return row


def answer_row(answer, reference, answer_type, question="What is it?") -> dict:
    return {"answer": answer, "reference_answer": reference, "answer_type": answer_type,
            "question_text": question}


# --- StructureFilter ----------------------------------------------------------------------


def test_structure_passes_a_well_formed_sample():
    for closed_by in ("model", "forced_eos", "forced_budget"):
        result = StructureFilter().check(structure_row(think_closed_by=closed_by))
        assert result.passed is True
        assert result.reason is None


@pytest.mark.parametrize(
    ("override", "reason_part"),
    [
        ({"reasoning": None}, "no reasoning"),
        ({"reasoning": "   \n  "}, "no reasoning"),
        ({"think_closed_by": None}, "never closed"),
        ({"answer": ""}, "empty answer"),
        ({"answer": None}, "empty answer"),
        ({"answer": "  \n "}, "empty answer"),
        ({"answer": "8 <think> more thoughts"}, "think tag inside the answer"),
        ({"answer": "8 </think>"}, "think tag inside the answer"),
    ],
)
def test_structure_rejects_malformed_samples(override, reason_part):
    result = StructureFilter().check(structure_row(**override))
    assert result.passed is False
    assert reason_part in result.reason


@pytest.mark.parametrize("token", ["<|im_end|>", "<|im_start|>", "<|endoftext|>", "</s>", "[INST]",
                                   "<|assistant|>"])
def test_structure_rejects_leaked_special_tokens_and_names_them(token):
    raw = f"<think>\n{GOOD_REASONING}\n</think>\n\nThe answer is 8.{token}"
    result = StructureFilter().check(structure_row(raw_text=raw))
    assert result.passed is False
    assert result.reason.startswith("leaked special token")
    assert repr(token) in result.reason


def test_structure_does_not_mistake_ordinary_angle_brackets_for_tokens():
    raw = "<think>\nIs 3 < 5 and 5 > 3? Yes; also a<b and <s is not a tag.\n</think>\n\nYes."
    assert StructureFilter().check(structure_row(raw_text=raw)).passed is True


# --- TruncationFilter ---------------------------------------------------------------------


@pytest.mark.parametrize(("finish", "reasoning_finish"), [("stop", None), ("stop", "stop"), ("stop", "eos")])
def test_truncation_passes_finished_samples(finish, reasoning_finish):
    result = TruncationFilter().check({"finish_reason": finish, "reasoning_finish": reasoning_finish})
    assert result == RuleResult(True)


def test_truncation_rejects_answer_cut_at_max_tokens():
    result = TruncationFilter().check({"finish_reason": "length", "reasoning_finish": "stop"})
    assert result.passed is False
    assert "finish_reason=length" in result.reason


def test_truncation_rejects_reasoning_out_of_budget():
    result = TruncationFilter().check({"finish_reason": "stop", "reasoning_finish": "length"})
    assert result.passed is False
    assert "reasoning ran out of its token budget" in result.reason


# --- LengthFilter -------------------------------------------------------------------------


def _length_filter() -> LengthFilter:
    return LengthFilter({
        "default": LengthBounds(min_reasoning_chars=10, max_reasoning_chars=100, min_answer_chars=1,
                                max_answer_chars=50),
        "code": LengthBounds(min_reasoning_chars=5, max_reasoning_chars=30, min_answer_chars=3,
                             max_answer_chars=500),
    })


def test_length_passes_within_bounds_and_scores_reasoning_length():
    result = _length_filter().check({"domain": "math", "reasoning": "  " + "x" * 40 + "  ", "answer": "8"})
    assert result.passed is True
    assert result.score == 40  # stripped length


@pytest.mark.parametrize(
    ("domain", "reasoning", "answer", "reason"),
    [
        ("math", "x" * 9, "8", "reasoning too short: 9 < 10 chars"),
        ("math", None, "8", "reasoning too short: 0 < 10 chars"),
        ("math", "x" * 101, "8", "reasoning too long: 101 > 100 chars"),
        ("math", "x" * 20, "   ", "answer too short: 0 < 1 chars"),
        ("math", "x" * 20, None, "answer too short: 0 < 1 chars"),
        ("math", "x" * 20, "y" * 51, "answer too long: 51 > 50 chars"),
        ("code", "x" * 31, "def f(): pass", "reasoning too long: 31 > 30 chars"),
        ("code", "x" * 20, "ab", "answer too short: 2 < 3 chars"),
    ],
)
def test_length_rejects_out_of_bounds_with_numbers_in_reason(domain, reasoning, answer, reason):
    result = _length_filter().check({"domain": domain, "reasoning": reasoning, "answer": answer})
    assert result.passed is False
    assert result.reason == reason


def test_length_uses_domain_bounds_and_falls_back_to_default():
    f = _length_filter()
    long_answer = "y" * 200
    # code allows 500 answer chars, the default (used for an unlisted domain) only 50
    assert f.check({"domain": "code", "reasoning": "x" * 20, "answer": long_answer}).passed is True
    assert f.check({"domain": "science", "reasoning": "x" * 20, "answer": long_answer}).passed is False


# --- RepetitionFilter ---------------------------------------------------------------------

PARAGRAPH = (
    "We need to find the number of apples. Alice has 3 apples and Bob has 5 apples.\n"
    "So together they have 3 + 5 = 8 apples, which we double check by counting again.\n"
)


def _load_good_cot() -> list[str]:
    responses = []
    with (DATA / "labels" / "math_cot_responses_labelled.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            responses.extend(json.loads(line)["code"])
    return responses


def test_repetition_false_positive_rate_on_good_cot_is_at_most_2_percent():
    responses = _load_good_cot()
    assert len(responses) == 800
    f = RepetitionFilter()
    failed = [r for r in responses if not f.check({"reasoning": r, "answer": ""}).passed]
    # Measured when written: 6 of 800 (0.75%).
    assert len(failed) / len(responses) <= 0.02, f"{len(failed)} of 800 good responses flagged"


def test_repetition_rejects_paragraph_looped_ten_times():
    result = RepetitionFilter().check({"reasoning": PARAGRAPH * 10, "answer": "8"})
    assert result.passed is False
    assert result.reason.startswith("duplicate lines 0.9")
    assert result.score >= 0.9  # the largest of the repetition measures


def test_repetition_rejects_loop_without_line_breaks_by_10gram_share():
    looped = PARAGRAPH.replace("\n", " ") * 10
    result = RepetitionFilter().check({"reasoning": looped, "answer": "8"})
    assert result.passed is False
    assert result.reason.startswith("duplicate 10-gram share")
    assert result.score > 0.9


def test_repetition_rejects_a_repeated_line():
    text = ("Let us solve the problem carefully, one step at a time.\n"
            + "Wait, let me recompute the sum of the two numbers.\n" * 10 + "The sum is 8.")
    result = RepetitionFilter().check({"reasoning": text, "answer": "8"})
    assert result.passed is False
    assert "duplicate lines" in result.reason


def test_repetition_rejects_a_stuttering_bigram():
    result = RepetitionFilter().check({"reasoning": "the answer " * 60, "answer": "x"})
    assert result.passed is False
    assert "top 2-gram share" in result.reason


def test_repetition_real_response_looped_three_times_fails_but_once_passes():
    good = _load_good_cot()[0]
    f = RepetitionFilter()
    assert f.check({"reasoning": good, "answer": ""}).passed is True
    assert f.check({"reasoning": good * 3, "answer": ""}).passed is False


def test_repetition_short_texts_skip_ngram_checks():
    # Fewer than 50 words: n-gram shares are noise and not applied.
    result = RepetitionFilter().check({"reasoning": "so so so so so so", "answer": "x"})
    assert result.passed is True


def test_repetition_thresholds_are_configurable():
    lenient = RepetitionFilter(max_dup_line_frac=1.0, max_dup_para_frac=1.0, max_top_2gram_frac=10.0,
                               max_top_3gram_frac=10.0, max_top_4gram_frac=10.0, max_dup_10gram_frac=1.0,
                               max_repeated_span_words=10**6)
    assert lenient.check({"reasoning": PARAGRAPH * 10, "answer": "8"}).passed is True


def test_repetition_metrics_on_known_inputs():
    # Lines under 20 characters are ignored; 3 identical long lines -> 2 duplicates of 3.
    stats = repetition_stats(pl.Series(["a long enough line of text here\n" * 3 + "short\nshort\nshort\n",
                                        "one single line that is long enough"]))
    assert stats["dup_line"].to_list() == pytest.approx([2 / 3, 0.0])
    sc = scan(pl.Series(["It's x_y 3.5, OK!", "a b c d", "ab cd ab cd", "x y z x y z", "x y z w"]))
    assert sc.words.offsets.tolist() == [0, 7, 11, 15, 21, 25]  # it s x y 3 5 ok
    h, c, o = sc.words.hashes, sc.words.chars, sc.words.offsets
    top2 = top_ngram_share(h, c, o, 2)
    assert top2[1] == 0.0  # no 2-gram repeats
    assert top2[2] == pytest.approx(2 * 4 / 8)
    dup3, _ = dup_ngram_coverage(h, c, o, 3)
    assert dup3[3] == pytest.approx(1.0) and dup3[4] == 0.0


def test_cheap_filters_follow_the_config():
    cfg = FilterConfig(repetition={"max_dup_line_frac": 0.11, "max_top_2gram_frac": 0.22, "max_dup_10gram_frac": 0.33})
    filters = {f.name: f for f in cheap_rules(cfg)}
    assert set(filters) == {"structure", "truncation", "length", "repetition", "redundancy", "completeness",
                            "language", "self_identity", "judge_bait", "format_compliance"}
    rep = filters["repetition"]
    assert (rep.limits["dup_line"], rep.limits["top2"], rep.limits["dup10"]) == (0.11, 0.22, 0.33)
    # Unset parameters are the Params model's defaults (declared once, in the rule).
    d = RepetitionFilter()
    assert (rep.limits["top3"], rep.max_span) == (d.limits["top3"], d.max_span) == (0.25, 120)


# --- check_batch --------------------------------------------------------------------------


def test_check_batch_returns_aligned_results():
    batch = pl.DataFrame({
        "sample_id": ["a", "b", "c"],
        "domain": ["math", "math", "code"],
        "reasoning": ["x" * 40, "x" * 3, "x" * 20],
        "answer": ["8", "8", "y" * 60],
    })
    out = _length_filter().check_batch(batch)
    assert dict(out.schema) == RESULT_SCHEMA
    assert out.height == 3
    assert out["passed"].to_list() == [True, False, True]
    assert out["score"].to_list() == [40.0, 3.0, 20.0]
    assert out["reason"].to_list() == [None, "reasoning too short: 3 < 10 chars", None]


def test_check_batch_on_empty_frame_returns_empty_typed_frame():
    batch = pl.DataFrame(schema={"finish_reason": pl.String, "reasoning_finish": pl.String})
    out = TruncationFilter().check_batch(batch)
    assert out.height == 0
    assert dict(out.schema) == RESULT_SCHEMA


def test_check_batch_names_missing_columns():
    batch = pl.DataFrame({"reasoning": ["r"], "answer": ["a"]})
    with pytest.raises(KeyError) as info:
        StructureFilter().check_batch(batch)
    message = str(info.value)
    assert "structure" in message
    assert "think_closed_by" in message and "raw_text" in message
    assert "'reasoning'" not in message  # present columns are not reported


# --- AnswerMatch --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "reference", "passed"),
    [
        ("so the answer is \\boxed{72}", "72", True),
        ("so the answer is \\boxed{71}", "72", False),
        ("The answer is \\boxed{\\frac{1}{2}}", "0.5", True),
        ("The answer is \\boxed{0.5}", "\\frac{1}{2}", True),
        ("The answer is \\boxed{0.6}", "\\frac{1}{2}", False),
        ("She makes 9 * 2 = $18 every day.\nA: 18", "18", True),
        ("The total is $1,234$.", "1234", True),
    ],
)
def test_answer_match_math(answer, reference, passed):
    result = AnswerMatch().check(answer_row(answer, reference, "math"))
    assert result.passed is passed
    assert result.score == float(passed)
    if not passed:
        assert "extracted" in result.reason and repr(reference) in result.reason


def test_answer_match_math_wrong_answer_reason_shows_extracted_value():
    result = AnswerMatch().check(answer_row("so the answer is \\boxed{71}", "72", "math"))
    assert result.reason == "extracted '71', reference '72'"


@pytest.mark.parametrize("answer", ["I have no idea.", "", None])
def test_answer_match_math_without_extractable_answer_fails(answer):
    result = AnswerMatch().check(answer_row(answer, "72", "math"))
    assert result.passed is False
    assert result.reason == "no final answer could be extracted"


CHOICE_Q = "Is the statement valid?\n\nOptions: True; False"


def test_options_are_parsed_from_the_question():
    assert options_of(CHOICE_Q) == ["True", "False"]
    assert options_of("Where?\n\nOptions: New York ; Paris;Rome") == ["New York", "Paris", "Rome"]
    assert options_of("No options here") == []


@pytest.mark.parametrize(
    ("answer", "passed", "reason"),
    [
        ("At first it seems False, but the answer is True.", True, None),
        ("Answer: true", True, None),
        ("At first it seems True, but the answer is False.", False, "picked 'False', reference 'True'"),
        ("I cannot tell.", False, "no option named in the answer"),
        ("Untrue things are falsey; Truest", False, "no option named in the answer"),
    ],
)
def test_answer_match_choice_takes_the_last_named_option(answer, passed, reason):
    result = AnswerMatch().check(answer_row(answer, "True", "choice", CHOICE_Q))
    assert result.passed is passed
    assert result.reason == reason


def test_answer_match_choice_multiword_options():
    q = "Which follows?\n\nOptions: (A) the red ball; (B) the blue ball"
    ok = AnswerMatch().check(answer_row("Not (A) the red ball. The answer is (B) the blue ball.",
                                        "(B) the blue ball", "choice", q))
    bad = AnswerMatch().check(answer_row("The answer is (A) the red ball.", "(B) the blue ball", "choice", q))
    assert ok.passed is True
    assert bad.passed is False and "(A) the red ball" in bad.reason


@pytest.mark.parametrize(
    ("question", "answer", "reference"),
    [
        ("Which city?\n\nOptions: New York; York", "The answer is New York.", "New York"),
        ("What is x?\n\nOptions: 3; -3", "So x = -3.", "-3"),
    ],
)
def test_answer_match_choice_option_containing_another_option(question, answer, reference):
    result = match_choice(answer, reference, options_of(question))
    assert result.passed is True, result.reason


def test_answer_match_choice_without_options_uses_the_reference():
    result = AnswerMatch().check(answer_row("I think it is yes.", "yes", "choice", "Is it? (no options)"))
    assert result.passed is True


@pytest.mark.parametrize(
    ("answer", "passed"),
    [
        ("... so the final answer is Paris.", True),
        ("THE ANSWER: paris", True),
        ("The answer is Parisian cuisine.", False),  # whole words only
        ("Paris " + "and more words " * 40, False),  # the final answer must be the reference
        ("Paris is not it; the answer is London.", False),  # not merely mention it near the end
    ],
)
def test_answer_match_text(answer, passed):
    result = AnswerMatch().check(answer_row(answer, "Paris", "text"))
    assert result.passed is passed
    if not passed:
        assert result.reason.startswith("final answer ") and result.reason.endswith("is not the reference 'Paris'")


@pytest.mark.parametrize(
    ("answer_type", "reference"),
    [("code", "def f(): pass"), ("code", None), (None, "42"), ("math", None), ("choice", None)],
)
def test_answer_match_unverifiable_passes_with_note(answer_type, reference):
    result = AnswerMatch().check(answer_row("whatever", reference, answer_type))
    assert result == RuleResult(True, None, "not verifiable here")
    assert verifiable(answer_type, reference) is False


def test_verifiable_types():
    assert verifiable("math", "1") and verifiable("choice", "A") and verifiable("text", "x")
    assert not verifiable("code", "x") and not verifiable("math", None)


def test_answer_match_agrees_with_gsm8k_labels():
    """First 50 questions x 4 model solutions (200) of the labelled GSM8K set."""
    path = DATA / "labels" / "gsm8k_model_solutions_labelled.jsonl"
    rows, labels = [], []
    with path.open(encoding="utf-8") as handle:
        for line in islice(handle, 50):
            rec = json.loads(line)
            reference = rec["ground_truth"].rsplit("A:", 1)[1].strip().replace(",", "")
            assert re.fullmatch(r"-?\d+(\.\d+)?", reference), reference
            for key, value in rec.items():
                if isinstance(value, dict) and "is_correct" in value:
                    rows.append(answer_row(value["solution"], reference, "math", rec["question"]))
                    labels.append(value["is_correct"])
    assert len(rows) == 200
    assert 0 < sum(labels) < 200  # both classes present
    out = AnswerMatch().check_batch(pl.DataFrame(rows))
    agreement = sum(p == y for p, y in zip(out["passed"].to_list(), labels)) / len(labels)
    # Measured when written: 200/200 (and 5276/5276 on the whole file).
    assert agreement >= 0.97, agreement
