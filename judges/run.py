"""Judge samples with one rule: render, call the engine with the output schema, parse, retry."""

from __future__ import annotations

import json
from collections.abc import Callable

from judges.ask import Asked, ask
from judges.parse import JudgeOutcome, parse_output
from judges.render import render_messages
from schemas.chat import ChatBackend
from schemas.judge_rule import JudgeRule


def applies(rule: JudgeRule, sample: dict) -> bool:
    """Does the rule apply to this sample by its own fields (domain, format, reference)?

    For samples held in memory (tests, benches, `curate judges test`); the judge stage selects
    from the store with pipeline.stages.judge.eligible, which adds the stage conditions."""
    return rule.applies_to.matches(sample)


def judge_samples(rule: JudgeRule, samples: list[dict], engine: ChatBackend, max_retries: int = 2,
                  on_progress: Callable[[int], None] | None = None) -> list[dict]:
    """One result per sample: passed, score, reason, details (raw output, tokens, attempts).

    Output that does not parse is retried (sampled, with another seed) up to `max_retries`
    times, then recorded as a judge error that fails the sample.
    """
    asked = ask(rule, [render_messages(rule, s) for s in samples], rule.output_schema(), engine,
                parse=lambda c: parse_output(rule, c.text, c.finish_reason),
                failed=lambda message: JudgeOutcome(None, None, message), ok=lambda o: o.ok,
                max_retries=max_retries, on_progress=on_progress)
    return [_verdict(rule, a) for a in asked]


def _verdict(rule: JudgeRule, a: Asked[JudgeOutcome]) -> dict:
    o = a.outcome
    details = json.dumps({"raw": a.raw, "prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens,
                          "attempts": a.attempts, "error": o.error, "flags": o.flags})
    if not o.ok:
        return {"passed": False, "score": None, "reason": f"judge error: {o.error}", "details": details}
    passed = o.score >= rule.threshold
    return {"passed": passed, "score": float(o.score), "reason": o.rationale, "details": details}
