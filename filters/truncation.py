"""Truncation: the answer or the reasoning stopped at its token limit instead of finishing."""

from __future__ import annotations

from collections.abc import Mapping

from filters.base import RuleResult, SampleFilter


class TruncationFilter(SampleFilter):
    name = "truncation"
    version = 1
    needs = ("finish_reason", "reasoning_finish")

    def check(self, s: Mapping) -> RuleResult:
        if s["finish_reason"] == "length":
            return RuleResult(False, reason="answer cut at max_tokens (finish_reason=length)")
        if s["reasoning_finish"] == "length":
            return RuleResult(False, reason="reasoning ran out of its token budget")
        return RuleResult(True)
