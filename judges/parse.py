"""Parse a judge's structured output into a typed outcome; failures are data, not None."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from schemas.judge_rule import JudgeRule


@dataclass
class JudgeOutcome:
    score: int | None
    rationale: str | None
    error: str | None  # why the output could not be used (never counted as a pass)
    flags: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_output(rule: JudgeRule, text: str, finish_reason: str) -> JudgeOutcome:
    if finish_reason == "length":
        return JudgeOutcome(None, None, "output cut at max_tokens before the JSON closed")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return JudgeOutcome(None, None, f"not JSON: {exc.msg}")
    if not isinstance(data, dict):
        return JudgeOutcome(None, None, "JSON is not an object")
    score = data.get("score")
    if isinstance(score, bool) or not isinstance(score, int):
        return JudgeOutcome(None, None, f"score is not an integer: {score!r}")
    if not rule.scale.min <= score <= rule.scale.max:
        return JudgeOutcome(None, None, f"score {score} outside {rule.scale.min}..{rule.scale.max}")
    flags = data.get("flags", [])
    if not isinstance(flags, list) or any(f not in rule.flags for f in flags):
        return JudgeOutcome(None, None, f"flags must be a list drawn from {rule.flags}: {flags!r}")
    rationale = data.get("rationale")
    return JudgeOutcome(score, str(rationale)[: rule.rationale_max_chars] if rationale is not None else None, None,
                        sorted(set(flags)))
