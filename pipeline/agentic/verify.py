"""A trajectory's outcome against its task's verification.

    verdict = verify_outcome(trajectory)    # RuleResult(passed, score, reason); passed None: not checked here

db_answer: the final answer against the reference the reference query computed: numbers equal
as decimals (34.1 == 34.10), a list ("A, B, C") item by item in order, other text after
normalizing case and spaces. db_state: the environment's final state hash equals the reference.
math / choice / text: the existing matchers (filters/answer_match.py; Math-Verify uses
signal.alarm, so call this from a process's main thread). code_tests: not here yet (the sandbox
run belongs to the verify stage); comes back unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from filters.answer_match import match_choice, match_math, match_text, options_of
from schemas.agentic import Trajectory


@dataclass(frozen=True)
class OutcomeVerdict:
    passed: bool | None   # None: not verifiable here (no answer is a False)
    reason: str


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "").replace("$", "").strip())
    except InvalidOperation:
        return None


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().strip(".").lower())


def match_db_answer(answer: str, reference: str) -> OutcomeVerdict:
    got, want = _number(answer), _number(reference)
    if want is not None:
        ok = got is not None and got == want
        return OutcomeVerdict(ok, f"{answer!r} {'==' if ok else '!='} {reference!r} (as numbers)")
    if ", " in reference:
        items = [_norm(x) for x in re.split(r",|\n", answer) if x.strip()]
        ok = items == [_norm(x) for x in reference.split(", ")]
        return OutcomeVerdict(ok, f"list {'matches' if ok else 'differs from'} the reference {reference!r}")
    ok = _norm(answer) == _norm(reference)
    return OutcomeVerdict(ok, f"{answer!r} {'matches' if ok else 'differs from'} {reference!r}")


def verify_outcome(trajectory: Trajectory) -> OutcomeVerdict:
    v, outcome = trajectory.task.verification, trajectory.outcome
    if v.kind == "none":
        return OutcomeVerdict(None, "the task has no verification")
    if v.kind == "db_state":
        ok = trajectory.final_state_hash == v.reference
        return OutcomeVerdict(ok, f"final state {'equals' if ok else 'differs from'} the reference state")
    if v.kind == "code_tests":
        return OutcomeVerdict(None, "code tests run in the verify stage (not yet wired for trajectories)")
    if outcome.status != "answered" or not outcome.final_answer:
        return OutcomeVerdict(False, f"no final answer ({outcome.status})")
    answer = outcome.final_answer
    if v.kind == "db_answer":
        return match_db_answer(answer, v.reference)
    if v.kind == "math":
        result = match_math(f"Final answer: {answer}", v.reference)
    elif v.kind == "choice":
        result = match_choice(answer, v.reference, options_of(trajectory.task.text))
    else:
        result = match_text(answer, v.reference)
    return OutcomeVerdict(result.passed, result.reason or ("matches" if result.passed else "differs"))
