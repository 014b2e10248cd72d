"""Answers that try to match anything: a final answer naming several alternatives ("41 or 42",
"True or False", "A and C", "Paris, London, Rome, Berlin", "\\boxed{3} or \\boxed{4}") where the
reference is one value. Such an answer is wrong whichever alternative the matcher happens to
pick, so answer_match fails it before matching (corpus: tests/adversarial/corpora/any_answers.jsonl).

Pure functions of text; the matchers in filters/answer_match.py call them.
"""

from __future__ import annotations

import re

# Words and signs that join alternatives. Not "and" alone ("3 and 4" may be a pair the
# question asks for) except where a single value is expected and both sides are values.
_OR = re.compile(r"(?i)(?:\bor\b|\band/or\b|\beither\b|\\lor\b|\\vee\b|\\text\{\s*or\s*\}|\\mid)")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_THOUSANDS = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
_BOXED_PAIR = re.compile(r"\\boxed\{")
_CONNECTOR = re.compile(r"(?i)^[\s$,;/&]*(?:(?:and/or|and|or|\\text\{\s*(?:and|or)\s*\}|\\lor|\\vee)[\s$,;/&]*)?$")
# Where the first clause of a final answer ends: "C, because A is wrong" -> "C".
_CLAUSE_END = re.compile(r"(?:[.;!?](?:\s|$)|,\s+(?:because|since|as|which|so|but|not)\b|\s\(|\s(?:because|since|as|which)\s)")


def first_clause(span: str) -> str:
    return _CLAUSE_END.split(span, maxsplit=1)[0]


def several_values(reference: str) -> bool:
    """A reference that is itself several values ("3, -3", "\\pm 3", "x = 1 or x = 2")."""
    return bool(re.search(r",|;|\\pm|\\mp|\\cup|\\\{|\bor\b|\band\b", reference))


def boxed_alternatives(answer: str) -> str | None:
    """Two different \\boxed{} at the end joined only by "or"/"and"/commas: `\\boxed{3} or \\boxed{4}`."""
    spans = []
    for m in _BOXED_PAIR.finditer(answer):
        depth, i = 1, m.end()
        while i < len(answer) and depth:
            depth += {"{": 1, "}": -1}.get(answer[i], 0)
            i += 1
        if depth == 0:
            spans.append((m.start(), i, answer[m.end():i - 1].strip()))
    if len(spans) < 2:
        return None
    (_, end_a, a), (start_b, _, b) = spans[-2], spans[-1]
    if a != b and _CONNECTOR.match(answer[end_a:start_b]):
        return f"the final answer gives alternatives \\boxed{{{a[:20]}}} and \\boxed{{{b[:20]}}}"
    return None


def number_alternatives(span: str, reference: str) -> str | None:
    """Math/numeric: several different numbers joined by "or" where the reference is one value."""
    if several_values(reference) or not _OR.search(span):
        return None
    numbers = {float(n) for n in _NUMBER.findall(_THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), span))}
    if len(numbers) >= 2:
        return f"the final answer names several values ({span[:60]!r})"
    return None


def bool_alternatives(found_in_first_clause: list[bool]) -> str | None:
    if True in found_in_first_clause and False in found_in_first_clause:
        return "the final answer says both true and false"
    return None


def several_options(named: set[str]) -> str | None:
    if len(named) >= 2:
        return f"the final answer names several options ({', '.join(sorted(named))[:60]})"
    return None


def text_alternatives(line: str, reference: str) -> str | None:
    """Text: "Paris or London", "Paris/London", "Paris; London", or a list of three or more
    short items ("Paris, London, Rome"); "Paris, France" and "Paris, the capital" stay answers."""
    if re.search(r"\bor\b|/|;", reference):
        return None
    parts = [p.strip() for p in re.split(r"(?i)\band/or\b|\bor\b|/|;", line) if p.strip(" .")]
    if len(parts) >= 2 and re.search(r"(?i)\bor\b|/|;", line):
        return f"the final answer gives alternatives ({line[:60]!r})"
    if "," not in reference:
        items = [p.strip(" .") for p in line.split(",")]
        if len(items) >= 3 and all(0 < len(p.split()) <= 3 for p in items):
            return f"the final answer lists several items ({line[:60]!r})"
    return None
