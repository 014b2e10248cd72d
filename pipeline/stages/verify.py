"""Verify stage: correctness against references, as a verdict pass (pipeline/verdict_loop.py).

answer_match (filters/answer_match.py): answers against the question's reference, for the
  answer types it knows; Math-Verify runs in spawned processes away from the main thread.
code_tests (pipeline/rules/code_tests.py): a code answer's program against its question's
  tests in the sandbox. A sandbox setup error is not a verdict: nothing is stored, the next
  run retries it (counted as code_errors).

Both are keyed by a config hash (rule, version, tolerance or time limit) like the cheap rules:
only samples without a verdict under the current hash are checked."""

from __future__ import annotations

from pipeline.stage import StageContext, StageReport
from pipeline.verdict_loop import RuleCount


def run(ctx: StageContext) -> StageReport:
    counts = {c.rule: c for c in ctx.verdict_pass("verify")}
    answers, code = counts.pop("answer_match", RuleCount("", 0, 0)), counts.pop("code_tests", RuleCount("", 0, 0))
    report = {"checked": answers.checked, "correct": answers.checked - answers.failed,
              "code_checked": code.checked, "code_passed": code.checked - code.failed, "code_errors": code.errors}
    report |= {c.rule: {"checked": c.checked, "failed": c.failed, "errors": c.errors} for c in counts.values()}
    notes = [f"[verify] code_tests: {code.errors} sandbox errors, no verdict stored; retried next run"] \
        if code.errors else []
    return StageReport(report, notes)
