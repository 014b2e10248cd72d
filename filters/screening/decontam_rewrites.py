"""Rewritten benchmark questions: an order-free check beside the n-gram index.

    check = OrderFreeIndex(questions, min_coverage=0.5)   # questions: BenchmarkItems of kind "question"
    check.best(text) -> OrderFreeHit | None

A leaked copy rarely arrives verbatim. New numbers in a word problem, other names, synonyms,
sentences in another order: each breaks every 8-gram it touches, and new numbers also fail the
n-gram rule's numbers check. Here a text is a *set* of features, order-free: its word tokens
(filters/screening/decontam.py `tokenize`) with every number and number word masked to "#",
and the bigrams of those tokens. Each feature weighs its IDF over the benchmark questions (a
rare word says more than "the"). Coverage both ways, of the item by the query and of the
query by the item, must reach `min_coverage`: one-sided coverage would let a short item
("Compute #") match any long text.

Numbers: in a word problem (GSM8K) new numbers leave the same story and the same solution
path, so they are ignored. In a formula question (MATH, AIME: LaTeX math) a changed number is
another problem (MATH train holds many such siblings of MATH-500 items), so there every number
of the item must occur in the query, as in the n-gram rule, and the query may add few others. So must they in a word problem
under MIN_STORY_TOKENS tokens ("What power of 4 is equal to 8?"), which has little else.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from filters.screening.decontam import BenchmarkItem, tokenize

# number words a rewritten word problem swaps as readily as digits ("three" eggs -> "five")
_NUMBER_WORDS = frozenset("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                          "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
                          "eighty ninety hundred thousand million half twice thrice double triple dozen".split())
# LaTeX math (a command, a script, a brace group, or $x$ with a non-digit inside): a formula question
_FORMULA = re.compile(r"\\[a-zA-Z]|[\^_{}]|\$[^$\d\s][^$]*\$")


def is_formula(text: str) -> bool:
    """A question whose numbers are part of its identity (LaTeX math), not a prose word problem
    (whose "$" is a currency sign)."""
    return _FORMULA.search(text) is not None


# A capitalized word mid-sentence (or before 's) is a name: a rewrite swaps names freely, and a
# rare name would otherwise weigh like the problem itself.
_CAPITALIZED = re.compile(r"(?<![\\\w])[A-Z][a-z]{2,}(?=\W|$)")
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+|\n)[(\"']*$")
_NAME = "personname"


def _mask_names(text: str) -> str:
    def name(m: re.Match) -> str:
        start = _SENTENCE_START.search(text, max(0, m.start() - 4), m.start()) is not None or m.start() == 0
        return _NAME if not start or text[m.end():m.end() + 2] in ("'s", "\u2019s") else m.group(0)

    return _CAPITALIZED.sub(name, text)


def masked_tokens(text: str) -> list[str]:
    """Word tokens with numbers, number words and names masked."""
    return ["#" if t[0].isdigit() or t in _NUMBER_WORDS else t for t in tokenize(_mask_names(text))]


def features(text: str) -> set:
    toks = masked_tokens(text)
    return set(toks) | set(zip(toks, toks[1:]))


def _numbers(text: str) -> Counter:
    return Counter(t for t in tokenize(text) if t[0].isdigit())


def _numbers_agree(item: Counter, query: Counter) -> bool:
    """Every number of the item in the query, and few besides (multiset Jaccard >= 0.75: a
    preamble may add "Problem 7.", a longer problem around the item's numbers may not)."""
    union = sum((item | query).values())
    return all(query[k] >= v for k, v in item.items()) and (not union or sum((item & query).values()) / union >= 0.75)


# A word problem this long is told apart by its story; shorter, its numbers are its identity
# ("What power of 4 is equal to 8?").
MIN_STORY_TOKENS = 20


@dataclass(frozen=True)
class OrderFreeHit:
    item: BenchmarkItem
    item_coverage: float  # IDF-weighted share of the item's features found in the query
    query_coverage: float  # the same share of the query's features found in the item
    numbers_free: bool  # a word problem: its numbers were not compared


class OrderFreeIndex:
    """IDF-weighted feature sets of benchmark questions as a sparse matrix: one query is one
    sparse product (about 0.3 ms against the shipped 2k questions)."""

    def __init__(self, questions: Sequence[BenchmarkItem], min_coverage: float, min_features: int = 12):
        self.min_coverage = min_coverage
        self.items = [q for q in questions if len(features(q.text)) >= min_features]  # too short to tell apart
        self._vocab: dict = {}
        rows = [[self._vocab.setdefault(f, len(self._vocab)) for f in features(q.text)] for q in self.items]
        df = np.bincount([j for r in rows for j in r], minlength=len(self._vocab))
        n = max(len(self.items), 1)
        self._idf = np.log(n / np.maximum(df, 1)) + 1.0
        self._unseen_idf = math.log(n) + 1.0  # a feature no item has is as rare as it gets
        ptr = np.cumsum([0] + [len(r) for r in rows])
        cols = np.array([j for r in rows for j in r], dtype=np.int64)
        # features x items, so a query's rows are summed: the weight each item shares with it
        self._matrix = sparse.csr_matrix((self._idf[cols], cols, ptr), shape=(len(self.items), len(self._vocab))).T.tocsr()
        self._item_weight = np.asarray(self._matrix.sum(axis=0)).ravel()
        self._numbers_free = [not is_formula(q.text) and len(tokenize(q.text)) >= MIN_STORY_TOKENS for q in self.items]
        self._numbers = [_numbers(q.text) for q in self.items]

    def best(self, text: str) -> OrderFreeHit | None:
        """The best-covered item whose coverage both ways reaches min_coverage (and whose numbers
        agree, for a formula question), or None."""
        if not self.items:
            return None
        ids, unseen = [], 0
        for f in features(text):
            j = self._vocab.get(f)
            if j is None:
                unseen += 1
            else:
                ids.append(j)
        if not ids:
            return None
        shared = np.asarray(self._matrix[ids].sum(axis=0)).ravel()
        query_weight = float(self._idf[ids].sum()) + unseen * self._unseen_idf
        score = np.minimum(shared / self._item_weight, shared / query_weight)
        qnums = None
        for idx in np.flatnonzero(score >= self.min_coverage)[np.argsort(-score[score >= self.min_coverage], kind="stable")]:
            if not self._numbers_free[idx]:
                qnums = _numbers(text) if qnums is None else qnums
                if not _numbers_agree(self._numbers[idx], qnums):
                    continue
            return OrderFreeHit(self.items[idx], round(float(shared[idx] / self._item_weight[idx]), 4),
                                round(float(shared[idx] / query_weight), 4), self._numbers_free[idx])
        return None


# --- the same formula, other words ---------------------------------------------------------------
# A short formula question ("Simplify $\sqrt{242}$.", "Evaluate $(1+2i)6-3i$.") is too short for
# the order-free check, and a rewrite changes its few words ("Work out", "Write in simplest
# form"). Its identity is the formula: if the text contains every formula of the item, in a
# canonical form (fractions as a/b, Unicode as LaTeX, no delimiters, spaces, braces or
# parentheses), and little other math, it is the item.

_MATH_SEGMENT = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<!\\)\$(.+?)(?<!\\)\$", re.S)
_FROM_UNICODE = str.maketrans({"√": r"\sqrt ", "π": r"\pi ", "×": "*", "·": "*", "≤": r"\le ", "≥": r"\ge ",
                               "≠": r"\ne ", "∞": r"\infty ", "θ": r"\theta ", "α": r"\alpha ", "−": "-"})
_COMMAND_ALIASES = ((r"\cdot", "*"), (r"\times", "*"), (r"\leq", r"\le"), (r"\geq", r"\ge"), (r"\neq", r"\ne"),
                    (r"\dfrac", r"\frac"), (r"\tfrac", r"\frac"))
_MATHY = frozenset("0123456789\\^_=+-*/<>|")
MIN_FORMULA_CHARS = 8  # "\sqrt242" (Simplify $\sqrt{242}$) and longer


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the brace group opening at text[start], and the index after it."""
    if start >= len(text) or text[start] != "{":
        return None
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i], i + 1
    return None


def _fractions_as_slash(text: str) -> str:
    """\\frac{a}{b} -> (a)/(b), nested ones too."""
    out, i = [], 0
    while (j := text.find(r"\frac", i)) >= 0:
        num = _braced(text, j + 5)
        den = _braced(text, num[1]) if num else None
        if not den:
            out.append(text[i:j + 5])
            i = j + 5
            continue
        out.append(f"{text[i:j]}({_fractions_as_slash(num[0])})/({_fractions_as_slash(den[0])})")
        i = den[1]
    return "".join(out) + text[i:]


def canonical_math(text: str) -> str:
    t = text.translate(_FROM_UNICODE)
    for command, alias in _COMMAND_ALIASES:
        t = t.replace(command, alias)
    t = _fractions_as_slash(t)
    t = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", t)  # 1,000 -> 1000
    t = re.sub(r"\\[,;:! ]|\\(?:left|right|displaystyle)(?![a-zA-Z])|[\s${}()]", "", t)
    return t.casefold().rstrip(".,;:")


def _mathiness(canonical: str) -> int:
    return sum(c in _MATHY for c in canonical)


class FormulaIndex:
    """Formula questions by their canonical formulas; `best(text)` is the item whose formulas the
    text contains (longest first), when the text holds not much more math than the item."""

    def __init__(self, questions: Sequence[BenchmarkItem], max_extra: float = 0.5):
        self.max_extra = max_extra
        self.items = []
        for q in questions:
            parts = [canonical_math(next(g for g in m.groups() if g is not None)) for m in _MATH_SEGMENT.finditer(q.text)]
            parts = sorted({p for p in parts if len(p) >= 3}, key=len, reverse=True)  # not "$A$", "$x$"
            if is_formula(q.text) and sum(map(len, parts)) >= MIN_FORMULA_CHARS and _mathiness("".join(parts)) >= 4:
                self.items.append((q, parts, _mathiness("".join(parts)), _numbers(q.text)))
        self.items.sort(key=lambda x: -sum(map(len, x[1])))

    def best(self, text: str) -> BenchmarkItem | None:
        """...and the numbers outside the formulas agree too ("divided by 8" is not "by 9")."""
        query = canonical_math(text)
        mathy, numbers = _mathiness(query), None
        for item, parts, item_mathy, item_numbers in self.items:
            if mathy <= item_mathy * (1 + self.max_extra) + 2 and all(p in query for p in parts):
                numbers = _numbers(text) if numbers is None else numbers
                if _numbers_agree(item_numbers, numbers):
                    return item
        return None
