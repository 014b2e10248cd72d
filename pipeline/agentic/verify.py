"""A trajectory's outcome against its task's verification.

    verdict = verify_outcome(trajectory)    # RuleResult(passed, score, reason); passed None: not checked here

db_answer: the final answer against the reference the reference query computed: numbers equal
as decimals (34.1 == 34.10), a list ("A, B, C") item by item in order, other text after
normalizing case and spaces. db_state: the environment's final state hash equals the reference.
math / choice / text: the existing matchers (filters/answer_match.py; Math-Verify uses
signal.alarm: `verify_outcomes` checks those in spawned processes when it is not called from the
main thread). code_tests: the program in the last assistant turn against the task's tests in the
sandbox (pipeline/rules/code_tests.py); a sandbox setup error is no verdict (passed None).
"""

from __future__ import annotations

import multiprocessing as mp
import re
import threading
from concurrent.futures import ProcessPoolExecutor
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
        return _code_tests(trajectory)
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


def _code_tests(trajectory: Trajectory) -> OutcomeVerdict:
    from pipeline.rules.code_tests import CodeTests

    if trajectory.outcome.status != "answered":
        return OutcomeVerdict(False, f"no final answer ({trajectory.outcome.status})")
    last = next((m.content for m in reversed(trajectory.messages) if m.role == "assistant" and m.content), None)
    if not last:
        return OutcomeVerdict(False, "no final answer (the last turn is empty)")
    result = CodeTests().check({"answer": last, "tests": trajectory.task.verification.tests})
    return OutcomeVerdict(result.passed, result.reason or ("the tests pass" if result.passed else "the tests fail"))


_NEEDS_MAIN_THREAD = ("math", "choice", "text")  # Math-Verify's signal.alarm


def verify_outcomes(trajectories: list[Trajectory]) -> list[OutcomeVerdict]:
    """verify_outcome for each, in order; the Math-Verify ones in spawned processes when this is
    not the main thread (a Prefect task's worker thread)."""
    out: list[OutcomeVerdict | None] = [None] * len(trajectories)
    away = [i for i, t in enumerate(trajectories) if t.task.verification.kind in _NEEDS_MAIN_THREAD]
    if away and threading.current_thread() is not threading.main_thread():
        with ProcessPoolExecutor(max_workers=min(2, len(away)), mp_context=mp.get_context("spawn")) as pool:
            for i, verdict in zip(away, pool.map(verify_outcome, [trajectories[i] for i in away])):
                out[i] = verdict
    for i, t in enumerate(trajectories):
        if out[i] is None:
            out[i] = verify_outcome(t)
    return out
