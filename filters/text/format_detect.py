"""Which answer style an answer realizes. Pure functions of the answer text (after </think>).

`matches(style, text)` says whether the text satisfies a requested style (a numbered answer that
ends in \\boxed{} satisfies both `numbered_steps` and `boxed`); `realized_style(text)` names the
one most specific style the text shows, for distributions."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

_NUMBERED = re.compile(r"^\s*\d+[.)]\s+\S", re.M)
_BULLET = re.compile(r"^\s*[-*\u2022]\s+\S", re.M)
_HEADING = re.compile(r"^#{1,6}\s+\S", re.M)
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$", re.M)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$", re.M)
# Code first: the fence opens the answer, after at most one short lead-in line ending in ':'
# ("Here's the function:"), which the 1.5B default model writes before nearly every code block.
_FENCE_FIRST = re.compile(r"\A\s*(?:[^\n`]{1,100}:[ \t]*\n)?\s*```[\w+-]*\n.*?\n```", re.S)
_JSON_FENCE = re.compile(r"\A\s*```(?:json)?\s*\n(.*?)\n```\s*\Z", re.S)
_FENCED_BLOCK = re.compile(r"^\s*```.*?(?:^\s*```[ \t]*$|\Z)", re.S | re.M)


def _outside_code(text: str) -> str:
    """The text without its fenced code blocks: a `# comment` or a `- x` line inside code is not a
    markdown heading or a bullet (code answers passed markdown_headings on their comments)."""
    return _FENCED_BLOCK.sub("", text)


def _json_object(text: str) -> bool:
    body = text.strip()
    fenced = _JSON_FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


def _sentences(text: str) -> int:
    return len(re.findall(r"[.!?](\s|$)", text.strip()))


def _prose(text: str) -> bool:
    """Sentences in paragraphs, no lists, headings, tables or code."""
    t = text.strip()
    structured = any(p.search(t) for p in (_NUMBERED, _BULLET, _HEADING, _TABLE_RULE)) or "```" in t
    return not structured and _sentences(t) >= 2


def _count(pattern: re.Pattern, text: str) -> int:
    return len(pattern.findall(_outside_code(text)))


DETECTORS = {
    "json_object": _json_object,
    "code_first": lambda t: bool(_FENCE_FIRST.match(t)) and bool(t[_FENCE_FIRST.match(t).end():].strip()),
    "table": lambda t: _count(_TABLE_RULE, t) >= 1 and _count(_TABLE_ROW, t) >= 2,
    "markdown_headings": lambda t: _count(_HEADING, t) >= 1,
    "numbered_steps": lambda t: _count(_NUMBERED, t) >= 2,
    "bullets": lambda t: _count(_BULLET, t) >= 2,
    "boxed": lambda t: "\\boxed{" in t,
    "terse_final": lambda t: 0 < len(t.strip()) <= 120 and "\n" not in t.strip() and _sentences(t) < 2,
    "prose": _prose,
}
UNKNOWN = "unknown"  # the realized style of an answer no detector recognizes
# Most specific first: the first style that matches is the realized one.
PRECEDENCE = list(DETECTORS)


class StyleDetector:
    """Detectors for the built-in styles plus config-defined ones (a regex each). Custom styles
    come first in precedence: a user who defines a style wants to see it counted."""

    def __init__(self, custom_patterns: Mapping[str, str] | None = None):
        self.detectors = {name: _regex(p) for name, p in (custom_patterns or {}).items()} | DETECTORS
        self.precedence = list(self.detectors)

    def matches(self, style: str, text: str | None) -> bool:
        if style not in self.detectors:
            raise ValueError(f"no detector for answer style {style!r}; known: {sorted(self.detectors)}")
        return bool(text and text.strip()) and self.detectors[style](text)

    def realized(self, text: str | None) -> str:
        """The most specific style the text shows, or UNKNOWN."""
        return next((s for s in self.precedence if self.matches(s, text)), UNKNOWN)


def _regex(pattern: str):
    compiled = re.compile(pattern, re.M)
    return lambda t: bool(compiled.search(t))


BUILT_IN = StyleDetector()
matches = BUILT_IN.matches
realized_style = BUILT_IN.realized
