"""What a trace rule reads: one trajectory's messages and tools, parsed once, with the helpers the
rules share (numbers in text, the final answer, the turn structure).

A trace rule is a SampleFilter (filters/base.py) over trajectory rows: its `needs` are the
columns `messages` and `tools` (JSON, as the trajectories tables store them, or already parsed
lists) and `question_text`; it implements `check_trace(view) -> RuleResult`. The rules never
import an environment: the trajectory carries the tool specs it was offered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import ClassVar

from filters.base import RuleResult, SampleFilter
from schemas.agentic import Message, ToolSpec

_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
_FINAL = re.compile(r"final answer\s*[:=]\s*(.+)", re.I)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def numbers(text: str | None) -> list[Decimal]:
    """The numbers written in a text (1,234.5 -> 1234.5), as exact decimals."""
    found = []
    for match in _NUMBER.finditer(text or ""):
        try:
            found.append(Decimal(match.group().replace(",", "")))
        except InvalidOperation:
            continue
    return found


def final_answer(text: str | None) -> str | None:
    """The answer a turn states: the last 'Final answer: ...' line or \\boxed{...}; else None."""
    text = text or ""
    marked = _FINAL.findall(text)
    if marked:
        return marked[-1].strip().rstrip(".").strip()
    boxed = _BOXED.findall(text)
    return boxed[-1].strip() if boxed else None


@dataclass
class TraceView:
    messages: list[Message]
    tools: dict[str, ToolSpec]
    question: str

    @classmethod
    def from_sample(cls, sample: Mapping) -> "TraceView":
        messages = _json(sample.get("messages"), "messages")
        tools = _json(sample.get("tools"), "tools") or []
        return cls([m if isinstance(m, Message) else Message.model_validate(m) for m in messages],
                   {t.name: t for t in (x if isinstance(x, ToolSpec) else ToolSpec.model_validate(x) for x in tools)},
                   sample.get("question_text") or "")

    def calls(self):
        """(turn index, call) for every tool call, in order."""
        for i, m in enumerate(self.messages):
            for call in m.tool_calls or []:
                yield i, call

    def result_of(self, call_id: str) -> Message | None:
        return next((m for m in self.messages if m.role == "tool" and m.tool_call_id == call_id), None)

    def next_assistant(self, after: int) -> tuple[int, Message] | None:
        return next(((i, m) for i, m in enumerate(self.messages) if i > after and m.role == "assistant"), None)

    def answer_turn(self) -> tuple[int, Message] | None:
        """The turn that answers: the last assistant turn without tool calls."""
        return next(((i, m) for i, m in reversed(list(enumerate(self.messages)))
                     if m.role == "assistant" and not m.tool_calls), None)

    def observations(self, before: int | None = None) -> list[Message]:
        return [m for i, m in enumerate(self.messages) if m.role == "tool" and (before is None or i < before)]


def _json(value, column: str):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"column {column!r} is not JSON: {exc}") from None
    return value if value is not None else []


class TraceRule(SampleFilter):
    """Base of the trace rules: parse the row once, then check_trace."""

    __abstract__ = True
    stage: ClassVar[str] = "trace"
    needs: ClassVar[tuple[str, ...]] = ("messages", "tools", "question_text")

    def check(self, sample: Mapping) -> RuleResult:
        return self.check_trace(TraceView.from_sample(sample))

    def check_trace(self, view: TraceView) -> RuleResult:
        raise NotImplementedError


def turn(i: int) -> str:
    return f"turn {i}"


def consistent(stated: Decimal, value: Decimal) -> bool:
    """`stated` is `value`, or `value` rounded to as many decimals as `stated` shows (34.1 for 34.1032)."""
    if stated == value:
        return True
    places = -stated.as_tuple().exponent if stated.as_tuple().exponent < 0 else 0
    try:
        return value.quantize(Decimal(1).scaleb(-places)) == stated
    except InvalidOperation:
        return False
