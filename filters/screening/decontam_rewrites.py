"""Rewritten benchmark questions: a rewrite check beside the n-gram index.

    check = OrderFreeIndex(questions, RewriteRule())   # questions: BenchmarkItems of kind "question"
    check.best(text) -> OrderFreeHit | None

A leaked copy rarely arrives verbatim. New numbers in a word problem, other names, synonyms,
sentences in another order, a prompt around it, a part cut off: each breaks every 8-gram it
touches, and new numbers also fail the n-gram rule's numbers check. Here a text is compared on
its word tokens (filters/screening/decontam.py `tokenize`) with numbers, number words and names
masked ("#", "personname"). Candidates come from IDF-weighted feature sets (tokens and bigrams;
one sparse product against all items); each candidate is then compared closely:

* frame: leading and trailing sentences that share almost nothing with the item ("Solve:",
  "Put your final answer in \\boxed{}.") are set aside; a sentence with a formula never is;
* coverage both ways (IDF-weighted, order-free) and tiled share both ways (greedy string
  tiling of the masked tokens: runs of >= 3 in the item's order, the runs themselves in any
  order, so moved sentences still count but a bag of the same words does not);
* "same words": both coverages >= min_coverage and the mean of the four >= min_score;
  "a piece of the item" (a copy cut short): the text's words nearly all in the item, in its
  order, and a good part of the item; "same template, other numbers": the tiled share both
  ways high (a word problem with new numbers, even a short one);
* things renamed: where the text swapped one word for another consistently (the things counted:
  "books" -> "comics" five times), the same words are looked for with the item's word put
  back, at a higher bar.

Numbers: in a word problem (GSM8K) new numbers leave the same story and the same solution
path, so they are ignored. In a formula question (MATH, AIME: LaTeX math) a changed number is
another problem (MATH train holds many such siblings of MATH-500 items), so there every number
of the item must occur in the text (a piece of the item: every number of the text in the item),
and its formulas must agree (canonical form: the text holds all of the item's, or only formulas
of the item); so must the numbers of a word problem under MIN_STORY_TOKENS tokens ("What power
of 4 is equal to 8?"), unless the whole wording is the item's (the template rule).

Measured (bench/contamination_rewrites.py, thresholds chosen on the tune half): what remains
flagged on questions that are not benchmark items is mostly the same template with other
numbers or one other word (MATH: "4 balls in 3 boxes" against "5 balls in 2 boxes"; GSM8K:
age puzzles worded alike), which a rewrite with new numbers cannot be told apart from.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

import numpy as np
from scipy import sparse

from filters.screening.decontam import BenchmarkItem, tokenize

# number words a rewritten word problem swaps as readily as digits ("three" eggs -> "five")
_NUMBER_WORDS = frozenset("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                          "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
                          "eighty ninety hundred thousand million half twice thrice double triple dozen".split())
# LaTeX math (a command, a script, a brace group, or $x$ with a non-digit inside): a formula question
_FORMULA = re.compile(r"\\[a-zA-Z]|[\^_{}]|\$[^$\d\s.][^$]*\$")  # "$.5 each" is money


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
    """Word tokens with numbers, number words and names masked; Unicode math as LaTeX (α is \\alpha)."""
    if not text.isascii():
        text = text.translate(_FROM_UNICODE)
    return ["#" if t[0].isdigit() or t in _NUMBER_WORDS else t for t in tokenize(_mask_names(text))]


def features(text: str) -> set:
    return token_features(masked_tokens(text))


def token_features(toks: Sequence[str]) -> set:
    return set(toks) | set(zip(toks, toks[1:]))


def renamed(item: Sequence[str], text: Sequence[str], least: int = 2) -> dict[str, str]:
    """Words the text renamed consistently (text word -> item word): aligned in place of an item
    word at least `least` times, always the same pair, neither word found on the other side; the
    things counted in a word problem swapped ("books" -> "comics" five times), as a name is."""
    mine, theirs = set(item), set(text)
    pairs: Counter = Counter()
    for op, i1, i2, j1, j2 in SequenceMatcher(None, item, text, autojunk=False).get_opcodes():
        if op == "replace" and i2 - i1 == j2 - j1:
            pairs.update((a, b) for a, b in zip(item[i1:i2], text[j1:j2])
                         if a.isalpha() and b.isalpha() and a not in theirs and b not in mine)
    ones = [(a, b) for (a, b), n in pairs.items() if n >= least]
    firsts, seconds = Counter(a for a, _b in ones), Counter(b for _a, b in ones)
    return {b: a for a, b in ones if firsts[a] == 1 and seconds[b] == 1}


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
class RewriteRule:
    """When a text is a rewrite of a benchmark question (see `OrderFreeIndex`). Measured on
    bench/contamination_rewrites.py (tune half of the items; negatives: MATH test outside
    MATH-500, GSM8K train, MATH train)."""

    min_score: float = 0.6  # mean of the four measures (IDF coverage both ways, tiled share both ways)
    min_coverage: float = 0.3  # and IDF coverage of item and text both at least this
    piece_item_coverage: float = 0.4  # a piece of the item: a good part of the item,
    piece_text_coverage: float = 0.7  # the text's words nearly all in the item
    piece_text_tiled: float = 0.8  # ... in the item's order
    template_tiled: float = 0.85  # the same wording with other numbers: tiled share both ways
    renamed_min_score: float = 0.8  # the same words once the things counted are renamed back: a higher bar
    frame_share: float = 0.2  # a leading or trailing sentence sharing less with the item is a frame
    min_tile: int = 3  # tokens in a tile (a shared run of masked tokens)


@dataclass(frozen=True)
class OrderFreeHit:
    item: BenchmarkItem
    item_coverage: float  # IDF-weighted share of the item's features found in the text
    query_coverage: float  # the same share of the text's features found in the item
    item_tiled: float  # share of the item's masked tokens in shared runs (>= min_tile) with the text
    query_tiled: float  # the same share of the text's masked tokens
    how: str  # "same words", "a piece of the item" or "same template, other numbers"
    numbers_free: bool  # a word problem: its numbers were not compared
    framed: bool  # leading or trailing sentences that are not the item (a prompt around it) were set aside


_SENTENCE = re.compile(r"\S(?:.*?)(?:[.!?:](?=\s)|(?=\n)|$)", re.S)  # a sentence or a line
_EQUATION = re.compile(r"[\^_=<>]")  # math without delimiters ("\\boxed{}" alone is an instruction)
_MAX_TILED_TOKENS = 2000  # a text far longer than any item is not a rewrite of one: its tiled share is tiny


def tiled(a: Sequence[str], b: Sequence[str], min_tile: int) -> int:
    """Tokens of `a` covered by greedy string tiling with `b` (the longest shared run first, each
    token used once, runs of at least min_tile; as plagiarism detectors do): word order counts
    within a run, not between runs, so moved sentences still tile."""
    a, b, covered = list(a), list(b), 0
    while True:
        m = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
        if m.size < min_tile:
            return covered
        covered += m.size
        for k in range(m.size):  # used tokens never match again
            a[m.a + k], b[m.b + k] = ("a", m.a + k), ("b", m.b + k)


def _within(part: Counter, whole: Counter) -> bool:
    return all(whole[k] >= v for k, v in part.items())


class OrderFreeIndex:
    """IDF-weighted feature sets of benchmark questions as a sparse matrix: one sparse product
    finds the candidates of a text (about 0.3 ms against the shipped 2k questions); each
    candidate is then compared closely (frame, coverage, tiling, numbers)."""

    def __init__(self, questions: Sequence[BenchmarkItem], rule: RewriteRule = RewriteRule(), min_features: int = 12,
                 candidates: int = 4):
        self.rule = rule
        self.candidates = candidates
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
        shape = (len(self.items), len(self._vocab))
        self._matrix = sparse.csr_matrix((self._idf[cols], cols, ptr), shape=shape).T.tocsr()
        self._item_weight = np.asarray(self._matrix.sum(axis=0)).ravel()
        self._item_features = [frozenset(r) for r in rows]
        self._masked = [masked_tokens(q.text) for q in self.items]
        self._formula = [is_formula(q.text) for q in self.items]
        self._numbers_free = [not f and len(tokenize(q.text)) >= MIN_STORY_TOKENS
                              for f, q in zip(self._formula, self.items)]
        self._numbers = [_numbers(q.text) for q in self.items]
        self._formulas = [(formula_parts(q.text), canonical_math(q.text)) if f else None
                          for f, q in zip(self._formula, self.items)]

    def _formulas_agree(self, idx: int, core: str) -> bool:
        """A formula question's identity is its formulas (canonical form, formulas.py below): the
        text holds every formula of the item, or no formula of its own that the item lacks (a
        piece of it) and, if it has formulas, at least one of the item's."""
        if self._formulas[idx] is None:
            return True
        parts, whole = self._formulas[idx]
        text = canonical_math(core)
        held = [p in text for p in parts]
        if all(held):
            return True
        own = formula_parts(core)  # none found: none kept, or the delimiters were dropped ("x^4+2x^3+2=0")
        return (any(held) or not own) and all(p in whole for p in own)

    def _ids(self, text: str | list[str]) -> tuple[list[int], int]:
        """Vocabulary ids of the features of a text (or of its masked tokens), and how many are unseen."""
        ids, unseen = [], 0
        for f in (features(text) if isinstance(text, str) else token_features(text)):
            j = self._vocab.get(f)
            if j is None:
                unseen += 1
            else:
                ids.append(j)
        return ids, unseen

    def _shared_all(self, ids: list[int]) -> np.ndarray:
        """The IDF weight each item shares with these features (the rows of the feature x item
        matrix summed; gathered by hand: scipy's row indexing costs more than the sum here)."""
        m = self._matrix
        rows = [slice(m.indptr[j], m.indptr[j + 1]) for j in ids]
        items = np.concatenate([m.indices[r] for r in rows])
        return np.bincount(items, weights=np.concatenate([m.data[r] for r in rows]), minlength=len(self.items))

    def _weight(self, ids: list[int], unseen: int) -> float:
        return float(self._idf[ids].sum()) + unseen * self._unseen_idf

    def _shared(self, ids: list[int], idx: int) -> float:
        mine = self._item_features[idx]
        return float(sum(self._idf[j] for j in ids if j in mine))

    def _core(self, text: str, segments: list[tuple[int, int]], idx: int) -> str:
        """The text without leading and trailing sentences that share (almost) nothing with the
        item: a preamble ("Solve:", "Here is a problem from my homework:") or an instruction
        after it ("Put your final answer in \\boxed{}.") says nothing about which problem it is."""
        def frame(seg: str) -> bool:
            if _MATH_SEGMENT.search(seg) or _EQUATION.search(seg):  # a formula is never a prompt's frame
                return False
            ids, unseen = self._ids(seg)
            weight = self._weight(ids, unseen)
            return weight > 0 and self._shared(ids, idx) < self.rule.frame_share * weight

        lo, hi = 0, len(segments)
        while lo < hi - 1 and frame(text[slice(*segments[lo])]):
            lo += 1
        while hi > lo + 1 and frame(text[slice(*segments[hi - 1])]):
            hi -= 1
        return text[segments[lo][0]:segments[hi - 1][1]]

    def best(self, text: str) -> OrderFreeHit | None:
        """The first of the best-covered items that the text is a rewrite of, or None."""
        if not self.items:
            return None
        ids, unseen = self._ids(text)
        if not ids:
            return None
        shared = self._shared_all(ids)
        item_cov = shared / self._item_weight
        near = np.flatnonzero(item_cov >= self.rule.min_coverage)
        if not len(near):
            return None
        both = np.minimum(item_cov[near], shared[near] / self._weight(ids, unseen))
        # candidates: the best both ways and the best-contained (a framed or cut copy)
        order = [int(near[i]) for i in np.argsort(-both, kind="stable")[:self.candidates]]
        order += [int(near[i]) for i in np.argsort(-item_cov[near], kind="stable")[:self.candidates]
                  if near[i] not in order]
        segments = [m.span() for m in _SENTENCE.finditer(text)]
        seen: dict[str, tuple] = {}  # core text -> (masked tokens, their feature ids, unseen count, numbers)
        for idx in order:
            hit = self._compare(idx, segments, text, seen)
            if hit is not None:
                return hit
        return None

    def _compare(self, idx: int, segments: list[tuple[int, int]], text: str, seen: dict) -> OrderFreeHit | None:
        core = self._core(text, segments, idx)
        framed = core != text[segments[0][0]:segments[-1][1]]
        if not self._formulas_agree(idx, core):
            return None
        if core not in seen:
            theirs = masked_tokens(core)
            seen[core] = (theirs, *self._ids(theirs), _numbers(core))
        theirs, ids, unseen, numbers = seen[core]
        hit = self._decide(idx, theirs, numbers, framed, ids, unseen)
        if hit is None and (renaming := renamed(self._masked[idx], theirs)):
            theirs = [renaming.get(t, t) for t in theirs]
            hit = self._decide(idx, theirs, numbers, framed, *self._ids(theirs), renamed=True)
        return hit

    def _decide(self, idx: int, theirs: list[str], numbers: Counter, framed: bool, ids: list[int], unseen: int,
                renamed: bool = False) -> OrderFreeHit | None:
        rule = self.rule
        shared = self._shared(ids, idx)
        item_cov = shared / self._item_weight[idx]
        text_cov = shared / max(self._weight(ids, unseen), 1e-9)
        mine = self._masked[idx]
        run = tiled(mine, theirs, rule.min_tile) if len(theirs) <= _MAX_TILED_TOKENS else 0
        item_tiled, text_tiled = run / len(mine), run / max(len(theirs), 1)
        free = self._numbers_free[idx]
        how, bar = None, rule.renamed_min_score if renamed else rule.min_score
        if (free or _numbers_agree(self._numbers[idx], numbers)) and min(item_cov, text_cov) >= rule.min_coverage \
                and (item_cov + text_cov + item_tiled + text_tiled) / 4 >= bar:
            how = "same words"
        elif renamed:  # only the same words, at a higher bar
            pass
        elif (free or _within(numbers, self._numbers[idx])) and item_cov >= rule.piece_item_coverage \
                and text_cov >= rule.piece_text_coverage and text_tiled >= rule.piece_text_tiled and len(theirs) >= 10:
            how = "a piece of the item"
        elif not self._formula[idx] and min(item_tiled, text_tiled) >= rule.template_tiled:
            how = "same template, other numbers"
        if how is None:
            return None
        return OrderFreeHit(self.items[idx], round(float(item_cov), 4), round(float(text_cov), 4), round(item_tiled, 4),
                            round(text_tiled, 4), how + (", things renamed" if renamed else ""), free, framed)


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


@lru_cache(maxsize=256)  # a text's candidates each ask for it
def canonical_math(text: str) -> str:
    t = text.translate(_FROM_UNICODE)
    for command, alias in _COMMAND_ALIASES:
        t = t.replace(command, alias)
    t = _fractions_as_slash(t)
    t = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", t)  # 1,000 -> 1000
    t = re.sub(r"\\[,;:! ]|\\(?:left|right|displaystyle)(?![a-zA-Z])|[\s${}()]", "", t)
    return t.casefold().rstrip(".,;:")


@lru_cache(maxsize=256)
def formula_parts(text: str) -> tuple[str, ...]:
    """The canonical formulas of a text ($...$, \\[...\\] and the like), longest first; not
    one- or two-character ones ("$A$", "$x$")."""
    parts = [canonical_math(next(g for g in m.groups() if g is not None)) for m in _MATH_SEGMENT.finditer(text)]
    return tuple(sorted({p for p in parts if len(p) >= 3}, key=len, reverse=True))


def _mathiness(canonical: str) -> int:
    return sum(c in _MATHY for c in canonical)


class FormulaIndex:
    """Formula questions by their canonical formulas; `best(text)` is the item whose formulas the
    text contains (longest first), when the text holds not much more math than the item."""

    def __init__(self, questions: Sequence[BenchmarkItem], max_extra: float = 0.5):
        self.max_extra = max_extra
        self.items = []
        for q in questions:
            parts = formula_parts(q.text)
            if is_formula(q.text) and sum(map(len, parts)) >= MIN_FORMULA_CHARS and _mathiness("".join(parts)) >= 4:
                self.items.append((q, parts, _mathiness("".join(parts)), _numbers(q.text)))
        self.items.sort(key=lambda x: -sum(map(len, x[1])))
        # by the first 3 characters of their longest formula: a text is compared with the items
        # whose key it contains, not with all of them
        self._by_key: dict[str, list[int]] = {}
        for k, (_q, parts, _m, _n) in enumerate(self.items):
            self._by_key.setdefault(parts[0][:3], []).append(k)

    def best(self, text: str) -> BenchmarkItem | None:
        """...and the numbers outside the formulas agree too ("divided by 8" is not "by 9")."""
        query = canonical_math(text)
        keys = {query[i:i + 3] for i in range(len(query) - 2)}
        near = sorted(k for key in keys.intersection(self._by_key) for k in self._by_key[key])
        mathy, numbers = _mathiness(query), None
        for item, parts, item_mathy, item_numbers in map(self.items.__getitem__, near):
            if mathy <= item_mathy * (1 + self.max_extra) + 2 and all(p in query for p in parts):
                numbers = _numbers(text) if numbers is None else numbers
                if _numbers_agree(item_numbers, numbers):
                    return item
        return None
