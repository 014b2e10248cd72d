"""Correctness against the question's reference answer.

math   -> Math-Verify (extraction + symbolic equivalence) of the answer vs the reference
choice -> the option the answer names last must be the reference option
text   -> the normalized reference appears, as whole words, at the end of the answer
code   -> not checked here (needs the sandbox); no verdict is written
Math-Verify's timeouts use signal.alarm, so run `check` in a process's main thread (the
verify stage uses a process pool).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from filters.base import RuleResult, SampleFilter

_OPTIONS = re.compile(r"\n\nOptions: (.+)\s*$", re.S)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s/.-]", " ", text.lower())).strip()


def options_of(question: str) -> list[str]:
    match = _OPTIONS.search(question)
    return [o.strip() for o in match.group(1).split(";")] if match else []


def match_choice(answer: str, reference: str, options: list[str]) -> RuleResult:
    """The option named last wins; when one option sits inside another ("York" in "New York",
    "3" in "-3") the mention that ends last, then the longer one, is the one named."""
    text = _norm(answer)
    best, picked = (-1, -1), None
    for opt in options or [reference]:
        for m in re.finditer(r"(?<!\w)" + re.escape(_norm(opt)) + r"(?!\w)", text):
            key = (m.end(), m.end() - m.start())
            if key > best:
                best, picked = key, opt
    if picked is None:
        return RuleResult(False, 0.0, "no option named in the answer")
    ok = _norm(picked) == _norm(reference)
    return RuleResult(ok, float(ok), None if ok else f"picked {picked!r}, reference {reference!r}")


def match_text(answer: str, reference: str) -> RuleResult:
    tail = _norm(answer)[-300:]
    ok = re.search(r"(?<!\w)" + re.escape(_norm(reference)) + r"(?!\w)", tail) is not None
    return RuleResult(ok, float(ok), None if ok else f"reference {reference!r} not in the answer's end")


def match_math(answer: str, reference: str) -> RuleResult:
    from math_verify import parse, verify

    gold = parse(reference if "$" in reference or "\\" in reference else f"${reference}$")
    pred = parse(answer)
    if not pred:
        return RuleResult(False, 0.0, "no final answer could be extracted")
    ok = bool(verify(gold, pred))
    return RuleResult(ok, float(ok), None if ok else f"extracted {str(pred[-1])[:60]!r}, reference {reference!r}")


class AnswerMatch(SampleFilter):
    name = "answer_match"
    version = 1
    needs = ("answer", "reference_answer", "answer_type", "question_text")

    def check(self, s: Mapping) -> RuleResult:
        kind, ref, answer = s["answer_type"], s["reference_answer"], s["answer"] or ""
        if ref is None or kind not in ("math", "choice", "text"):
            return RuleResult(True, None, "not verifiable here")
        if kind == "choice":
            return match_choice(answer, ref, options_of(s["question_text"]))
        if kind == "text":
            return match_text(answer, ref)
        return match_math(answer, ref)


def verifiable(answer_type: str | None, reference: str | None) -> bool:
    return reference is not None and answer_type in ("math", "choice", "text")
