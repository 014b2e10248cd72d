"""Think/answer structure: reasoning present and closed, an answer after it, nothing leaked."""

from __future__ import annotations

import re
from collections.abc import Mapping

from filters.base import RuleResult, SampleFilter

# Chat-template and tokenizer markers that must never reach training text.
_LEAKED = re.compile(r"<\|[a-z_]+\|>|<\|im_(start|end)\|>|</?s>|\[/?INST\]|<\|endoftext\|>", re.I)


class StructureFilter(SampleFilter):
    name = "structure"
    version = 1
    needs = ("reasoning", "answer", "think_closed_by", "raw_text")

    def check(self, s: Mapping) -> RuleResult:
        if not (s["reasoning"] or "").strip():
            return RuleResult(False, reason="no reasoning before the answer")
        if s["think_closed_by"] is None:
            return RuleResult(False, reason="reasoning never closed with </think>")
        answer = (s["answer"] or "").strip()
        if not answer:
            return RuleResult(False, reason="empty answer after the reasoning")
        if "<think>" in answer or "</think>" in answer:
            return RuleResult(False, reason="a think tag inside the answer")
        leaked = _LEAKED.search(s["raw_text"] or "")
        if leaked:
            return RuleResult(False, reason=f"leaked special token {leaked.group(0)!r}")
        return RuleResult(True)
