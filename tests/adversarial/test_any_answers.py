"""Answers that try to match anything never verify (several boxed values, "41 or 42", every
option, "True or False", a list of cities), and honest answers that merely look like that
(a reference with two roots, "1,000", "Paris, France", "C, because A is wrong") still do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from filters.answer_match import check_rows

CORPUS = [json.loads(line) for line in (Path(__file__).parent / "corpora" / "any_answers.jsonl").open()]
QUESTION = {"choice": "Which one?\n\nOptions: A; B; C; D"}


def _rows(cases):
    return [{"answer": c["answer"], "reference_answer": c["reference"], "answer_type": c["answer_type"],
             "question_text": QUESTION.get(c["answer_type"], "Q")} for c in cases]


def test_the_corpus_covers_every_answer_type():
    assert len(CORPUS) >= 50
    assert {c["answer_type"] for c in CORPUS} == {"math", "numeric", "choice", "text"}


def test_no_hedged_answer_verifies():
    results = check_rows(_rows(CORPUS))
    verified = [c["answer"] for c, (passed, _, _) in zip(CORPUS, results) if passed]
    assert not verified, verified
    assert all(reason for _, _, reason in results)  # each says why


HONEST = [
    ("The roots are $x = 3$ or $x = -3$, so \\boxed{\\pm 3}.", "\\pm 3", "math"),
    ("\\boxed{3, -3}", "3, -3", "math"),
    ("The answer is 1,000.", "1000", "numeric"),
    ("Either way the sum is the same: \\boxed{24}.", "24", "math"),
    ("The answer is 42 (not 41).", "42", "numeric"),
    ("The answer is C, because A and B are wrong.", "C", "choice"),
    ("The answer is New York.", "New York", "choice"),
    ("The answer is True, not false.", "True", "math"),
    ("The answer is Paris, France.", "Paris", "text"),
    ("The answer is Paris, the capital of France.", "Paris", "text"),
    ("The answer is (b), since (a) fails.", "(b)", "math"),
    ("\\boxed{\\frac{1}{2}}", "0.5", "numeric"),
]


@pytest.mark.parametrize("answer,reference,kind", HONEST)
def test_honest_answers_still_verify(answer, reference, kind):
    question = "Which one?\n\nOptions: New York; York; Boston; C; A; B" if kind == "choice" else "Q"
    [(passed, _, reason)] = check_rows([{"answer": answer, "reference_answer": reference, "answer_type": kind,
                                         "question_text": question}])
    assert passed, reason
