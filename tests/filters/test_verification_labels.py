"""Answer verification (filters/answer_match.py) against labelled data and hand-written cases.

Labelled runs (all rows, no sampling), in a spawned 2-process pool because Math-Verify's
signal-based timeouts need each worker's main thread:
  GSM8K model solutions (data/labels/gsm8k_model_solutions_labelled.jsonl): 1,319 x 4 with is_correct
  MATH CoT responses (data/labels/math_cot_responses_labelled.jsonl): 100 x 8 with the grader's score
  Math-Verify's equivalence cases (data/labels/math_answer_equivalence_cases.jsonl): 268
The figures and every disagreement are printed (visible without -s).

Measured when written (Math-Verify 0.9.0): GSM8K 5276/5276, MATH CoT 799/800, equivalence
cases 260/268; about 15 s for the three on 2 cores.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time

import pytest

from filters.answer_match import (
    DEFAULT_REL_TOL,
    AnswerMatch,
    check_rows,
    final_answer_span,
    verifiable,
)
from tests.conftest import DATA

LABELS = DATA / "labels"
_TASK_ROWS = 64
_MAX_SECONDS = 60  # per labelled run; about 5-8 s each on 2 idle cores


def row(answer, reference, answer_type, question="What is it?") -> dict:
    return {"answer": answer, "reference_answer": reference, "answer_type": answer_type, "question_text": question}


@pytest.fixture(scope="module")
def pool():
    with mp.get_context("spawn").Pool(2) as workers:
        yield workers


def run_rows(pool, rows: list[dict]) -> tuple[list[tuple], float]:
    start = time.perf_counter()
    parts = [rows[i:i + _TASK_ROWS] for i in range(0, len(rows), _TASK_ROWS)]
    results = [r for part in pool.map(check_rows, parts) for r in part]
    return results, time.perf_counter() - start


def report(capsys, *lines: str) -> None:
    with capsys.disabled():
        print()
        for line in lines:
            print(line)


# --- GSM8K: 1,319 questions x 4 model solutions, is_correct labels -----------------------------


def gsm8k_rows() -> tuple[list[dict], list[bool]]:
    rows, labels = [], []
    with (LABELS / "gsm8k_model_solutions_labelled.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            rec = json.loads(line)
            reference = rec["ground_truth"].rsplit("A:", 1)[1].strip().replace(",", "")
            for value in rec.values():
                if isinstance(value, dict) and "is_correct" in value:
                    rows.append(row(value["solution"], reference, "math", rec["question"]))
                    labels.append(value["is_correct"])
    return rows, labels


def test_gsm8k_agreement_with_is_correct(pool, capsys):
    rows, labels = gsm8k_rows()
    assert len(rows) == 5276
    assert 0 < sum(labels) < len(labels)
    results, seconds = run_rows(pool, rows)
    agree = sum(passed == label for (passed, _, _), label in zip(results, labels))
    wrong = [(i, labels[i], results[i][2]) for i in range(len(rows)) if results[i][0] != labels[i]]
    report(capsys, f"GSM8K model solutions: {agree}/{len(rows)} agree with is_correct "
                   f"({agree / len(rows):.2%}) in {seconds:.1f} s",
           *(f"  row {i}: label {label}, rule says {not label}: {reason}" for i, label, reason in wrong[:20]))
    assert agree / len(rows) >= 0.995
    assert seconds < _MAX_SECONDS


# --- MATH: 100 problems x 8 Qwen2.5-Math CoT responses, grader verdicts ------------------------

# Every disagreement examined, with its diagnosis.
MATH_COT_DIAGNOSES = {
    (72, 7): "grader false negative: the response boxes 10000 and the gold is 10{,}000 ({,} is a LaTeX "
             "thousands separator), the same number; the rule is right",
}


def math_cot_rows() -> tuple[list[dict], list[bool], list[tuple[int, int]]]:
    rows, labels, keys = [], [], []
    with (LABELS / "math_cot_responses_labelled.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            rec = json.loads(line)
            assert len(rec["code"]) == len(rec["score"]) == 8
            for k, (response, score) in enumerate(zip(rec["code"], rec["score"])):
                rows.append(row(response, rec["gt"], "math", rec["question"]))
                labels.append(bool(score))
                keys.append((rec["idx"], k))
    return rows, labels, keys


def test_math_cot_agreement_with_grader(pool, capsys):
    rows, labels, keys = math_cot_rows()
    assert len(rows) == 800
    results, seconds = run_rows(pool, rows)
    agree = sum(passed == label for (passed, _, _), label in zip(results, labels))
    wrong = [i for i in range(len(rows)) if results[i][0] != labels[i]]
    report(capsys, f"MATH CoT responses: {agree}/{len(rows)} agree with the grader ({agree / len(rows):.2%}) "
                   f"in {seconds:.1f} s",
           *(f"  problem {keys[i][0]} response {keys[i][1]}: grader {labels[i]}, rule {results[i][0]} "
             f"(gold {rows[i]['reference_answer']!r}; {results[i][2] or 'verified'}) -- "
             f"{MATH_COT_DIAGNOSES.get(keys[i], 'NOT EXAMINED')}" for i in wrong))
    assert agree / len(rows) >= 0.995


# --- Math-Verify's own equivalence cases ----------------------------------------------------------

# The cases whose upstream test used options the pipeline does not (it verifies with Math-Verify's
# defaults: LaTeX + expression extraction, float_rounding 6, strict, no set/relation comparison).
EQUIVALENCE_DIAGNOSES = {
    6: "'1,22' = 1.22 only with a decimal comma (upstream: expression extraction only); a comma here separates",
    31: "upstream extracts LaTeX only and inline $ ... $ must not span lines; the expression fallback finds 9",
    32: "as above for \\( ... \\) spanning lines",
    133: "upstream float_rounding=2 (0.33 = 1/3); the pipeline keeps 6 decimals",
    139: "upstream float_rounding=2 (2.6667 = 8/3); the pipeline keeps 6 decimals",
    186: "upstream allow_set_relation_comp=True; off in the pipeline",
    253: "upstream strict=False (f(y) = f(x)); the pipeline is strict",
    263: "label says 1 - 1/e equals 1 + 1/e: recorded from Math-Verify's unit stripping eating \\mathrm{e} "
         "(upstream's current test expects 0); the rule reads \\mathrm{e} as e and says they differ",
}


def test_math_verify_equivalence_cases(pool, capsys):
    rows, labels, tests = [], [], []
    with (LABELS / "math_answer_equivalence_cases.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            rec = json.loads(line)
            rows.append(row(rec["pred"], rec["gold"], "math"))
            labels.append(bool(rec.get("expected", rec.get("result"))))
            tests.append(rec["_test"])
    assert len(rows) == 268
    results, seconds = run_rows(pool, rows)
    agree = sum(passed == label for (passed, _, _), label in zip(results, labels))
    wrong = [i for i in range(len(rows)) if results[i][0] != labels[i]]
    report(capsys, f"Math-Verify equivalence cases: {agree}/{len(rows)} agree ({agree / len(rows):.2%}) "
                   f"in {seconds:.1f} s",
           *(f"  case {i} ({tests[i]}): expected {labels[i]}, rule {results[i][0]} -- "
             f"{EQUIVALENCE_DIAGNOSES.get(i, 'NOT EXAMINED')}" for i in wrong))
    assert agree >= 260  # measured: 260/268, the 8 above
    assert seconds < _MAX_SECONDS


# --- the shipped TheoremQA and SciBench pools verify their own references ----------------------


def _pool_questions(prefix: str):
    from pipeline.config_loading import load_run_config
    from pipeline.pools import read_pool

    questions = []
    for pool_config in load_run_config().pools:
        if (pool_config.source or "").startswith(prefix):
            questions += read_pool(pool_config).questions
    return questions


def _wrong_number(text: str) -> str:
    value = float(text.replace(",", "").replace("\u2212", "-"))
    return "1" if value == 0 else repr(value * 1.1)


def _restated_and_wrong(reference: str) -> tuple[list[str], list[str]]:
    """Answers stating the reference (must pass) and a wrong one (must fail)."""
    right = [f"Therefore, the answer is {reference}.", f"So the result is \\boxed{{{reference}}}."]
    if reference in ("True", "False"):
        wrong = "False" if reference == "True" else "True"
    elif reference.startswith("(") and len(reference) == 3:
        wrong = "(a)" if reference != "(a)" else "(b)"
    elif reference.startswith("["):
        values = json.loads(reference)
        values[0] = values[0] + max(1, abs(values[0]))
        wrong = json.dumps(values)
    else:
        wrong = _wrong_number(reference)
    return right, [f"Therefore, the answer is {wrong}.", f"So the result is \\boxed{{{wrong}}}."]


@pytest.mark.parametrize(("prefix", "count"), [("theoremqa", 800), ("scibench", 580)])
def test_pool_references_verify_as_numeric(pool, capsys, prefix, count):
    """Every TheoremQA answer shape (integer, float, bool, list, option) and every SciBench
    answer_number, restated in a sample's answer, passes as "numeric"; a wrong one fails."""
    questions = _pool_questions(prefix)
    assert len(questions) == count
    rows, expected = [], []
    for q in questions:
        right, wrong = _restated_and_wrong(q.reference_answer)
        rows += [row(a, q.reference_answer, "numeric", q.text) for a in right + wrong]
        expected += [True] * len(right) + [False] * len(wrong)
    results, seconds = run_rows(pool, rows)
    bad = [(rows[i]["reference_answer"], rows[i]["answer"], results[i][2])
           for i in range(len(rows)) if results[i][0] != expected[i]]
    report(capsys, f"{prefix}: {len(rows) - len(bad)}/{len(rows)} restated/wrong answers judged as expected "
                   f"in {seconds:.1f} s",
           *(f"  {b}" for b in bad[:20]))
    assert not bad


def test_bigbench_choice_pools_pick_the_named_option():
    """Every shipped BIG-bench multiple-choice question: a final answer naming an option passes
    exactly when that option is the reference (options that contain one another included)."""
    from filters.answer_match import options_of

    rule, checked, wrong = AnswerMatch(), 0, []
    questions = [q for q in _pool_questions("bigbench") if q.answer_type == "choice"]
    assert len(questions) > 2900
    for q in questions:
        for option in options_of(q.text):
            for answer in (f"The answer is {option}", f"After all that:\n\n{option}"):
                result = rule.check(row(answer, q.reference_answer, "choice", q.text))
                checked += 1
                if result.passed != (option == q.reference_answer):
                    wrong.append((q.source, answer, q.reference_answer, result.reason))
    assert not wrong[:10], f"{len(wrong)}/{checked} wrong"


# --- hand-written cases: numeric tolerance --------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "reference", "passed"),
    [
        ("The pressure is \\boxed{50.7 \\text{ atm}}", "50.7", True),
        ("The pressure is \\boxed{49.2 \\text{ atm}}", "50.7", True),  # 3.0% off
        ("The pressure is \\boxed{48.5 \\text{ atm}}", "50.7", False),  # 4.3% off
        ("The answer is 52.6 atm.", "50.7", True),  # 3.7% above
        ("The answer is 52.8 atm.", "50.7", False),  # 4.1% above
        ("So the answer is 3.52e-19 J.", "3.52e-19", True),
        ("So the answer is 3.52 x 10^-19 J.", "3.52e-19", True),
        ("So the answer is $3.52 \\times 10^{-19}$ J.", "3.52e-19", True),
        ("So the answer is $3.52 \\times 10^{-18}$ J.", "3.52e-19", False),  # wrong order of magnitude
        ("The answer is 89,034.79 dollars.", "89,034.79", True),
        ("\\boxed{-2}", "\u22122", True),  # SciBench writes a unicode minus
        ("\\boxed{2}", "\u22122", False),
        ("\\boxed{+65.5}", "+65.49", True),
        ("The enthalpy change is +65.5 kJ/mol.", "+65.49", True),
        ("The answer is +65.5 kJ/mol.", "-65.49", False),
        ("Therefore, the answer is 4e-05.", "4e-05", True),  # e-notation ending a sentence
        ("The rate is \\boxed{7.25\\%}", "7.25", True),  # SciBench unit "%"
        ("The rate is \\boxed{7.25\\%}", "0.0725", True),
        ("The rate is \\boxed{0.0725}", "7.25", False),  # a factor 100 without a percent sign
        ("\\boxed{\\frac{\\pi}{3}}", "1.047", True),
        ("\\boxed{\\sqrt{2}}", "1.414", True),
        ("Final answer: 1.3733", "1.3733", True),
        ("\\boxed{345}", "345.0", True),
        ("\\boxed{0}", "0", True),
        ("\\boxed{0.0001}", "0", False),  # no tolerance around zero
        ("I am not sure.", "345.0", False),
        ("\\boxed{x}", "345.0", False),
        ("\\boxed{\\frac{63}{5}}", "12\\frac{3}{5}", True),  # not a plain number: Math-Verify
    ],
)
def test_numeric_relative_tolerance(answer, reference, passed):
    result = AnswerMatch().check(row(answer, reference, "numeric"))
    assert result.passed is passed, result.reason
    assert result.score == float(passed)


@pytest.mark.parametrize(
    ("answer", "passed"),
    [
        ("\\boxed{5}", True),
        ("\\boxed{5.0}", True),
        ("\\boxed{4.9}", True),  # a decimal near a whole-number reference: tolerance (2%)
        ("\\boxed{6}", False),  # a whole number must be the whole number
        ("\\boxed{5.4}", False),  # 8% off
    ],
)
def test_numeric_whole_number_reference(answer, passed):
    assert AnswerMatch().check(row(answer, "5", "numeric")).passed is passed


def test_numeric_tolerance_is_a_parameter():
    answer = "The answer is \\boxed{52.9}"  # 4.3% above 50.7
    assert DEFAULT_REL_TOL == 0.04
    assert AnswerMatch().check(row(answer, "50.7", "numeric")).passed is False
    assert AnswerMatch(rel_tol=0.05).check(row(answer, "50.7", "numeric")).passed is True  # SciBench's own
    assert AnswerMatch(rel_tol=0.01).check(row("\\boxed{50.4}", "50.7", "numeric")).passed is True
    assert AnswerMatch(rel_tol=0.001).check(row("\\boxed{50.4}", "50.7", "numeric")).passed is False


def test_math_stays_exact_for_decimals():
    # math keeps Math-Verify's exact comparison (6 decimals): 1.37 is not 1.3733
    assert AnswerMatch().check(row("\\boxed{1.37}", "1.3733", "math")).passed is False
    assert AnswerMatch().check(row("\\boxed{1.37}", "1.3733", "numeric")).passed is True


# --- hand-written cases: TheoremQA answer types -----------------------------------------------


@pytest.mark.parametrize("answer_type", ["numeric", "math"])
@pytest.mark.parametrize(
    ("answer", "reference", "passed"),
    [
        ("The answer is True.", "True", True),
        ("Therefore, the statement is true.", "True", True),
        ("\\boxed{\\text{True}}", "True", True),
        ("The answer is: yes", "True", True),
        ("There is no such map, so the claim is true.", "True", True),  # the last verdict on a bare line
        ("So the statement is not true.", "True", False),
        ("This isn't true.", "True", False),
        ("The answer is False.", "True", False),
        ("The answer is no.", "True", False),
        ("The answer is False.", "False", True),
        ("At first it looks false, but the answer is True.", "False", False),
        ("Hmm.", "True", False),
    ],
)
def test_theoremqa_bool(answer_type, answer, reference, passed):
    assert AnswerMatch().check(row(answer, reference, answer_type)).passed is passed


@pytest.mark.parametrize("answer_type", ["numeric", "math"])
@pytest.mark.parametrize(
    ("answer", "passed"),
    [
        ("The answer is (c).", True),
        ("\\boxed{C}", True),
        ("\\boxed{\\text{(C)}}", True),
        ("(a) fails and (b) fails, so the correct option is (c).", True),
        ("The answer is option c", True),
        ("(c) looks tempting, but the answer is (a).", False),
        ("\\boxed{(b)}", False),
        ("Nope.", False),
    ],
)
def test_theoremqa_option(answer_type, answer, passed):
    assert AnswerMatch().check(row(answer, "(c)", answer_type)).passed is passed


@pytest.mark.parametrize(
    ("answer", "reference", "passed"),
    [
        ("The answer is \\boxed{[0.333, 0.25]}", "[0.333, 0.25]", True),
        ("The answer is \\boxed{\\left[\\frac{1}{3}, \\frac{1}{4}\\right]}", "[0.333, 0.25]", True),
        ("The answer is [0.25, 0.333].", "[0.333, 0.25]", True),  # sorted, as TheoremQA's evaluation
        ("The answer is [0.5, 0.333].", "[0.333, 0.25]", False),
        ("The answer is [0.333].", "[0.333, 0.25]", False),
        ("The roots are -1 and 6.", "[-1, 6]", True),
        ("\\boxed{x_1 = -1, x_2 = 6}", "[-1, 6]", True),
        ("Therefore the answer is $(4, 1, 2, 0)$.", "[4, 1, 2, 0]", True),
        ("Therefore the answer is $(4, 1, 2, 1)$.", "[4, 1, 2, 0]", False),
        ("Therefore the answer is (5, 1, 2, 0).", "[4, 1, 2, 0]", False),  # whole numbers are exact
        ("Therefore the answer is (4.1, 1, 2, 0).", "[4, 1, 2, 0]", True),  # a decimal gets the tolerance
        ("The answer is [2.02, 1.3].", "[2.0, 1.32]", True),
        ("I could not finish.", "[2.0, 1.32]", False),
    ],
)
def test_theoremqa_lists(answer, reference, passed):
    assert AnswerMatch().check(row(answer, reference, "numeric")).passed is passed


def test_list_references_are_intervals_under_math():
    # MATH's "[-9, 9]" is an interval: only "numeric" reads a JSON list as TheoremQA's list of numbers
    assert AnswerMatch().check(row("so $x \\in \\boxed{[-9, 9]}$", "[-9, 9]", "math")).passed is True
    assert AnswerMatch().check(row("so $x \\in \\boxed{[-9, 9)}$", "[-9, 9]", "math")).passed is False


# --- hand-written cases: choice and text check the final answer -----------------------------------

CHOICE_Q = "Is the statement valid?\n\nOptions: True; False"
BOOKS_Q = ("Which is true?\n\nOptions: The black book is the leftmost.; The orange book is the leftmost.; "
           "The blue book is the rightmost.")
DATES_Q = "What is the date?\n\nOptions: 05/01/2021; 05/02/2021; 04/30/2021"


@pytest.mark.parametrize(
    ("answer", "reference", "question", "passed"),
    [
        ("The answer is True because the premise is False.", "True", CHOICE_Q, True),
        ("**Answer:** True", "True", CHOICE_Q, True),
        ("## Final Answer\nTrue", "True", CHOICE_Q, True),
        ("\\boxed{\\text{True}}", "True", CHOICE_Q, True),
        ("False at first sight. The answer is True.", "True", CHOICE_Q, True),
        ("The answer is False, although True was tempting.", "True", CHOICE_Q, False),
        ("True.\n\nI hope this helps.", "True", CHOICE_Q, False),  # the final line names no option
        ("The black book is not the leftmost. So the answer is: The orange book is the leftmost.",
         "The orange book is the leftmost.", BOOKS_Q, True),
        ("So the orange book is the leftmost.", "The orange book is the leftmost.", BOOKS_Q, True),
        ("The answer is: The black book is the leftmost.", "The orange book is the leftmost.", BOOKS_Q, False),
        ("Today is 05/02/2021, so yesterday was 05/01/2021. The answer is 05/01/2021.", "05/01/2021", DATES_Q, True),
        ("Yesterday was 05/01/2021, so the answer is 05/02/2021.", "05/01/2021", DATES_Q, False),
    ],
)
def test_choice_final_answer(answer, reference, question, passed):
    result = AnswerMatch().check(row(answer, reference, "choice", question))
    assert result.passed is passed, result.reason


@pytest.mark.parametrize(
    ("answer", "passed"),
    [
        ("Paris", True),
        ("... so the final answer is Paris.", True),
        ("The answer is Paris, the capital of France.", True),
        ("\\boxed{\\text{Paris}}", True),
        ("**Final answer:** Paris\n\nI hope this helps.", True),
        ("I think it is Paris.", True),
        ("Paris is not it; the answer is London.", False),  # the case: Paris near the end, London final
        ("Paris? No. The answer is London.", False),
        ("Answer: London. Paris was wrong.", False),
        ("It is not Paris.", False),
        ("The answer is Parisian cuisine.", False),
        ("", False),
    ],
)
def test_text_final_answer(answer, passed):
    result = AnswerMatch().check(row(answer, "Paris", "text"))
    assert result.passed is passed, result.reason


def test_text_articles_do_not_count():
    assert AnswerMatch().check(row("So the answer is Odyssey.", "The Odyssey", "text")).passed is True
    assert AnswerMatch().check(row("So the answer is The Iliad.", "The Odyssey", "text")).passed is False


def test_final_answer_span_prefers_what_comes_last():
    assert final_answer_span("\\boxed{3} was wrong; the answer is 4") == ("4", "marker")
    assert final_answer_span("The answer is 4, i.e. \\boxed{4}") == ("4", "boxed")
    assert final_answer_span("no marker\n\nlast line\n") == ("last line", "last_line")


def test_boxed_beats_an_earlier_final_answer_phrase():
    answer = "The final answer is $5$. I hope it is correct.\nWait, recheck: \\boxed{6}"
    assert AnswerMatch().check(row(answer, "6", "math")).passed is True
    assert AnswerMatch().check(row(answer, "5", "math")).passed is False


def test_math_reference_is_read_as_latex():
    # "7\pi" and mixed numbers: the reference used to be parsed without $...$ (7\pi read as 7)
    assert AnswerMatch().check(row("\\boxed{7\\pi}", "7\\pi", "math")).passed is True
    assert AnswerMatch().check(row("\\boxed{7}", "7\\pi", "math")).passed is False
    assert AnswerMatch().check(row("\\boxed{1 \\frac{1}{4}}", "1\\frac{1}{4}", "math")).passed is True
    assert AnswerMatch().check(row("\\boxed{\\frac{5}{4}}", "1\\frac{1}{4}", "math")).passed is True
    assert AnswerMatch().check(row("\\boxed{\\frac{1}{4}}", "1\\frac{1}{4}", "math")).passed is False
    euler = row("$1 + \\frac{1}{\\mathrm{e}}$", "1 - \\frac{1}{\\mathrm{e}}", "math")
    assert AnswerMatch().check(euler).passed is False


def test_numeric_is_verifiable():
    assert verifiable("numeric", "1.5") and not verifiable("numeric", None)
    assert AnswerMatch().check(row("whatever", None, "numeric")).reason == "not verifiable here"
