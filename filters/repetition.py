"""Repetition, after Gopher (Rae et al. 2021): duplicate lines, top 2-gram and duplicate 10-gram shares.

Loops are the typical failure of small or over-long reasoning; each ratio is the share of the
text's characters that sits in repeated material. Gopher's web-text settings misfire on math
CoT (LaTeX delimiter lines repeat, punctuation tokens inflate 5-grams), so words are
alphanumeric runs, lines under 20 characters are ignored, and the defaults sit at about the
99th percentile of good CoT (800 labelled Qwen2.5-Math responses; see tests/test_filters.py).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

from filters.base import RuleResult, SampleFilter

_WORD = re.compile(r"[^\W_]+")
_MIN_LINE_CHARS = 20
_MIN_WORDS_FOR_NGRAMS = 50  # n-gram shares of very short texts are noise


def words_of(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def dup_line_fraction(text: str) -> float:
    lines = [ln.strip() for ln in text.splitlines() if len(ln.strip()) >= _MIN_LINE_CHARS]
    if len(lines) < 2:
        return 0.0
    return sum(c - 1 for c in Counter(lines).values()) / len(lines)


def top_ngram_fraction(words: list[str], n: int) -> float:
    """Characters covered by the most frequent n-gram (if repeated) over all word characters."""
    if len(words) < n:
        return 0.0
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    gram, count = grams.most_common(1)[0]
    if count < 2:
        return 0.0
    return count * sum(len(w) for w in gram) / max(sum(len(w) for w in words), 1)


def dup_ngram_fraction(words: list[str], n: int) -> float:
    """Characters inside n-grams that occur more than once, over all word characters."""
    if len(words) < n:
        return 0.0
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered = [False] * len(words)
    for i, g in enumerate(grams):
        if counts[g] > 1:
            covered[i:i + n] = [True] * n
    return sum(len(w) for w, c in zip(words, covered) if c) / max(sum(len(w) for w in words), 1)


class RepetitionFilter(SampleFilter):
    name = "repetition"
    version = 1
    needs = ("reasoning", "answer")

    def __init__(self, max_dup_line_frac: float = 0.3, max_top_2gram_frac: float = 0.25,
                 max_dup_10gram_frac: float = 0.5):
        self.max_dup_line = max_dup_line_frac
        self.max_top_2gram = max_top_2gram_frac
        self.max_dup_10gram = max_dup_10gram_frac

    def check(self, s: Mapping) -> RuleResult:
        text = f"{s['reasoning'] or ''}\n{s['answer'] or ''}"
        dup_lines = dup_line_fraction(text)
        if dup_lines > self.max_dup_line:
            return RuleResult(False, dup_lines, f"duplicate lines {dup_lines:.2f} > {self.max_dup_line}")
        words = words_of(text)
        if len(words) < _MIN_WORDS_FOR_NGRAMS:
            return RuleResult(True, dup_lines)
        top2 = top_ngram_fraction(words, 2)
        if top2 > self.max_top_2gram:
            return RuleResult(False, top2, f"top 2-gram share {top2:.2f} > {self.max_top_2gram}")
        dup10 = dup_ngram_fraction(words, 10)
        if dup10 > self.max_dup_10gram:
            return RuleResult(False, dup10, f"duplicate 10-gram share {dup10:.2f} > {self.max_dup_10gram}")
        return RuleResult(True, max(dup_lines, top2, dup10))
