"""Length bounds on reasoning and answer, per domain (configurable)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from filters.base import RuleResult, SampleFilter
from schemas.config import LengthBounds


class LengthFilter(SampleFilter):
    name = "length"
    version = 1
    needs = ("domain", "reasoning", "answer")

    def __init__(self, bounds_for: Callable[[str], LengthBounds]):
        self.bounds_for = bounds_for

    def check(self, s: Mapping) -> RuleResult:
        b = self.bounds_for(s["domain"])
        r, a = len((s["reasoning"] or "").strip()), len((s["answer"] or "").strip())
        if r < b.min_reasoning_chars:
            return RuleResult(False, r, f"reasoning too short: {r} < {b.min_reasoning_chars} chars")
        if r > b.max_reasoning_chars:
            return RuleResult(False, r, f"reasoning too long: {r} > {b.max_reasoning_chars} chars")
        if a < b.min_answer_chars:
            return RuleResult(False, r, f"answer too short: {a} < {b.min_answer_chars} chars")
        if a > b.max_answer_chars:
            return RuleResult(False, r, f"answer too long: {a} > {b.max_answer_chars} chars")
        return RuleResult(True, r)
