"""Benchmark decontamination: word n-gram overlap between a text and benchmark items.

Pure: no file I/O (pipeline/benchmarks.py reads the benchmark files and builds the index).

    index = NgramIndex(items)                  # items: BenchmarkItem(benchmark, item_id, text, kind)
    index.match(question_text) -> Match | None # benchmark questions only
    index.match_answer(answer, question_text)  # benchmark questions and solutions, see below

Matching runs on normalized text (`normalize`) split into word tokens (`tokenize`):

* normalize: Unicode NFKC (curly quotes and dashes folded); LaTeX markup noise removed
  (math delimiters `$ $$ \\( \\) \\[ \\]`, spacing `\\, \\! \\; \\: \\  ~ \\quad \\hspace{}`,
  `\\left \\right \\big..`, `\\displaystyle`, `\\text{}` `\\mathrm{}` and friends keep their
  argument, empty groups `P_{}`), `\\dfrac \\tfrac` -> `\\frac`, `\\ldots \\cdots` -> `\\dots`,
  braces around one character dropped (`x^{2}` == `x^2`, `\\frac{1}{2}` == `\\frac12`); numbers
  canonical (`1,000` `1{,}000` `1\\,000` -> `1000`, but not inside lists like `1,4,34,653`;
  `2.50` -> `2.5`, `3.0` -> `3`); case folded; whitespace collapsed. Punctuation and
  operators stay, so filters/screening/dedup.py builds its exact-duplicate keys on it. Idempotent.
* tokenize: numbers (`12`, `2.5`) and letter runs; everything else (operators, braces,
  punctuation, underscores) separates tokens; LaTeX commands become words (`\\frac` -> frac).

The index holds every distinct 8-gram of tokens of every benchmark item (a question shorter
than 8 tokens, e.g. MATH-500 "Simplify $\\sqrt{242}$.", is one whole-item gram that must
appear contiguously). For a query, each item sharing n-grams gets three measures:

* item coverage: share of the item's n-grams found in the query (the item is *contained*
  in the query, with or without text around it),
* query coverage: share of the query's n-grams found in the item (the query is a piece of
  the item),
* longest span: tokens of the longest contiguous run shared with the item.

Decision (`DecisionRule`): a match when item coverage >= 0.5, or query coverage >= 0.8
with >= 8 shared n-grams, and (for benchmark *questions*) the numbers agree: every number
of the item occurs in the query as often (multiset; for query coverage, the other way
round); or, without any number check, a shared run of >= 40 tokens. Of several matching
items the highest score (max of the coverages) is reported, with a short reason.

Why (measured on the shipped data; tests/filters/test_decontam.py): the normalizer absorbs the
light perturbations (whitespace, number formatting, LaTeX spacing and markup), so planted
benchmark questions are caught 100% exactly, perturbed and inside a longer text; on raw
lowercase tokens the same rule catches 64% of the combined perturbations. The numbers rule handles *template siblings*:
MATH and GSM8K train hold many questions worded like a test item with other numbers, a
different problem with a different answer; on the 21.7k pool questions it cuts the
non-overlap flags from 45 to 14 at no recall cost. n and coverage, on the pools and on
planted items with one word replaced (a harder edit than the tests require):
n=5: 25 spurious flags, one-word recall 99.1%; n=8: 14, 95.9%; n=10: 14, 90.9%;
n=13: 7, 80.2% and two real overlaps lost. Coverage 0.4 / 0.5 / 0.6 / 0.7 at n=8: 19 / 14 /
14 / 14 spurious, one-word recall 97.5 / 95.9 / 91.5 / 80.6%. n=8 and 0.5 sit at the knee.
What remains flagged and is not the same problem: MATH train siblings that share a long
figure ([asy] code) or differ in one word ("the letters of the word RADII" vs "ELLIPSE").

Generated answers (`NgramIndex.match_answer`): restating one's own question is normal, so
the answer's n-grams that also occur in the sample's own question are dropped first. The
rest is what the model wrote; the answer is contaminated when it covers a benchmark item
by the same rule, where items are benchmark questions (the answer quotes a benchmark
question that is not its own question, e.g. a memorized "similar problem") and benchmark
solutions (the answer reproduces a reference solution: MATH-500 / AIME24 solutions, GSM8K
test rationales, HumanEval canonical solutions; solutions under 20 tokens such as
"return x + y" are not indexed, any correct answer may contain them). Solutions are only
matched in answers, never in questions; benchmark questions under 8 tokens only in
questions. Real answers to non-benchmark questions (7.5k GSM8K train rationales, 427 MBPP
solutions, 760 Qwen2.5-Math CoT on MATH test) flag 0.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field


NORMALIZER_VERSION = 1

# --- normalization -------------------------------------------------------------------------

_FRAC_VARIANTS = re.compile(r"\\[dtc](frac|binom)(?![a-zA-Z])")  # \dfrac \tfrac \cfrac \dbinom \tbinom
_DOTS = re.compile(r"\\(?:[lc]dots|dots[bcmio]?)(?![a-zA-Z])")  # \ldots \cdots \dotsb ... -> \dots
_EMPTY_GROUP = re.compile(r"[\^_]?\{\s*\}")  # P_{}, ABCD^{}_{} (AIME typesetting artifacts)
# Removed without a trace: thousands separators inside numbers (1\,000, 1{,}000), the
# negative thin space (24,\!000), and text / font wrappers (the command goes, its argument stays).
_TO_EMPTY = re.compile(
    r"(?:\\,|\{,\})(?=\d{3}(?!\d))|\\!"
    r"|\\(?:text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mathsf|mathtt|mbox|hbox|operatorname)\s*(?=\{)"
)
# Replaced by a space: commands that only change size, spacing or style, and math delimiters
# ($, $$, \$ as currency, \( \) \[ \]).
_TO_SPACE = re.compile(
    r"\\[hv]space\*?\{[^{}]*\}"
    r"|\\(?:displaystyle|textstyle|scriptstyle|left|right|middle|[bB]igg?[lrm]?|limits|nolimits"
    r"|quad|qquad|enspace|thinspace|negthinspace|medspace|thickspace|it|rm|bf|sf|tt)(?![a-zA-Z])"
    r"|\\[,;:> ]|\\?\$+|\\[()\[\]]"
)
_FRAC_DIGITS = re.compile(r"\\frac\s*(\d)\s*(\d)")  # \frac12 -> \frac{1}{2}
_ONE_CHAR_BRACES = re.compile(r"(?<!\\)\{\s*([^\s{}\\])\s*\}")  # x^{2} -> x^2
# 1,000 and 12,345,678; not inside comma lists ("1,4,34,653": 653 is its own number)
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?!\d|,\d)")
_TRAILING_ZEROS = re.compile(r"\.(\d*?)0+(?!\d|\.\d)")  # 2.50 -> 2.5, "is 3.0." -> "is 3." (after a digit)
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2212": "-",
                         "\u2013": "-", "\u2014": "-"})


def _unbrace(m: re.Match) -> str:
    # x^{2} -> x^2, \frac{1}{2} -> \frac 1 2: spaces keep adjacent digits apart (not "12")
    c = m.group(1)
    return f" {c} " if c.isalnum() else c


def _after_digit(m: re.Match) -> bool:
    # (a leading lookbehind would make the regex scan every position: 5x slower)
    return m.start() > 0 and m.string[m.start() - 1].isdigit()


def _drop_separator(m: re.Match) -> str:
    if m.start() > 0 and m.string[m.start() - 1] in "0123456789,.":
        return m.group(0)
    return m.group(0).replace(",", "")


def _strip_zeros(m: re.Match) -> str:
    if not _after_digit(m):
        return m.group(0)
    start = m.start()
    while start > 0 and m.string[start - 1].isdigit():
        start -= 1
    if start > 0 and m.string[start - 1] == ".":  # 1.2.30 (a version, not a decimal): leave it
        return m.group(0)
    return "." + m.group(1) if m.group(1) else ""


def _drop_empty(m: re.Match) -> str:
    # thousands separators only between digits; \! and font wrappers anywhere
    return m.group(0) if m.group(0)[-1] in ",}" and not _after_digit(m) else ""


def normalize(text: str) -> str:
    """Canonical text for matching: see the module docstring. Idempotent."""
    t = text
    if not t.isascii():  # ASCII is already NFKC
        t = unicodedata.normalize("NFKC", t).translate(_QUOTES)
    if "~" in t:  # LaTeX tie
        t = t.replace("~", " ")
    if "\\" in t or "{" in t:
        t = _FRAC_VARIANTS.sub(r"\\\1", t)
        t = _DOTS.sub(r"\\dots", t)
        t = _TO_EMPTY.sub(_drop_empty, t)
    if "\\" in t or "$" in t:
        t = _TO_SPACE.sub(" ", t)
        t = _FRAC_DIGITS.sub(r"\\frac{\1}{\2}", t)
    if "{" in t:
        t = _EMPTY_GROUP.sub("", t)
        t = _ONE_CHAR_BRACES.sub(_unbrace, t)
    if "," in t:
        t = _THOUSANDS.sub(_drop_separator, t)
    if "." in t:
        t = _TRAILING_ZEROS.sub(_strip_zeros, t)
    return " ".join(t.split()).casefold()


_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+")


def tokenize(text: str) -> list[str]:
    """Word tokens of the normalized text: numbers and letter runs."""
    return _TOKEN.findall(normalize(text))


# --- the index -------------------------------------------------------------------------------

KINDS = ("question", "solution")
_NUMBER = re.compile(r"\d")


@dataclass(frozen=True)
class BenchmarkItem:
    benchmark: str
    item_id: str
    text: str
    kind: str = "question"  # "question" (what is asked) or "solution" (reference solution text)


@dataclass(frozen=True)
class Match:
    benchmark: str
    item_id: str
    kind: str  # which text of the item matched: "question" or "solution"
    score: float  # max(item_coverage, query_coverage)
    item_coverage: float  # share of the item's n-grams found in the query
    query_coverage: float  # share of the query's (checked) n-grams found in the item
    longest_span: int  # tokens in the longest contiguous shared run
    shared_ngrams: int
    numbers_agree: bool  # every number of the item occurs in the query (as often)
    reason: str


@dataclass(frozen=True)
class DecisionRule:
    """When a query counts as containing a benchmark item (see the module docstring)."""

    n: int = 8
    min_item_coverage: float = 0.5
    min_query_coverage: float = 0.8
    min_shared_for_query_coverage: int = 8
    min_span: int = 40
    # Coverage decisions also need the numbers to agree: every number of the item occurs in
    # the query (item coverage) or every number of the query occurs in the item (query
    # coverage). MATH and GSM8K are full of template siblings: the same wording with other
    # numbers, a different problem with a different answer. Number formatting is normalized,
    # so a copied item keeps its numbers. A long verbatim run (min_span) needs no such check.
    numbers_must_agree: bool = True
    # Shorter items are not indexed. Benchmark questions of 3-7 tokens exist (MATH-500:
    # "Simplify $\\sqrt{242}$.") and are matched as a whole, contiguously. Short reference
    # solutions ("return x + y", "return len(string)") say nothing about where an answer came
    # from: a correct answer to any question may contain them.
    min_question_tokens: int = 3
    min_solution_tokens: int = 20
    # Rewritten questions (filters/screening/decontam_rewrites.py): where no n-gram decision
    # matches, a benchmark question whose words (numbers and names masked) the text shares:
    # IDF-weighted coverage of item and text both >= order_free_min_coverage and the mean of
    # the coverages and tiled shares (word order within runs) >= order_free_min_score; or the
    # text is a piece of the item, or the item's wording with other numbers. 0 turns the check
    # off. Questions only, never answers.
    order_free_min_coverage: float = 0.3
    order_free_min_score: float = 0.6

    def describe(self) -> str:
        nums = " and the numbers agree" if self.numbers_must_agree else ""
        free = (f"; or a rewrite: words (numbers and names masked) covering item and text >= "
                f"{self.order_free_min_coverage}, mean with their tiled shares >= {self.order_free_min_score}, or a "
                "piece of the item, or its wording with other numbers" if self.order_free_min_coverage else "")
        return (f"{self.n}-gram overlap: item coverage >= {self.min_item_coverage}, or query coverage >= "
                f"{self.min_query_coverage} with >= {self.min_shared_for_query_coverage} shared n-grams{nums}; "
                f"or a shared run of >= {self.min_span} tokens{free}")


@dataclass(frozen=True)
class Candidate:
    """Overlap measures of one query against one benchmark item (before the decision)."""

    item: BenchmarkItem
    item_coverage: float
    query_coverage: float
    longest_span: int
    shared_ngrams: int
    item_numbers_in_query: bool
    query_numbers_in_item: bool


@dataclass
class IndexStats:
    items: int = 0
    items_by_benchmark: dict[str, int] = field(default_factory=dict)
    short_items: int = 0  # indexed as one whole-item gram (fewer than n tokens)
    skipped_items: list[tuple[str, str, str]] = field(default_factory=list)  # (benchmark, item_id, kind) too short
    ngrams: int = 0


def _gram_keys(ids: Sequence[int], n: int) -> list[int]:
    """Keys of the n-grams of a token-id sequence, in order. Python hashes tuples of ints
    deterministically (no per-process salt), so keys and results are reproducible."""
    if len(ids) < n:
        return []
    return list(map(hash, zip(*(ids[i:] for i in range(n)))))


def _numbers(tokens: list[str]) -> Counter:
    """The numbers of a text as a multiset ("divided by 9" after "... + 9 +" needs two 9s)."""
    return Counter(t for t in tokens if _NUMBER.match(t))


def _within(part: Counter, whole: Counter) -> bool:
    return all(whole[k] >= v for k, v in part.items())


class NgramIndex:
    """Word n-gram index over benchmark items.

    match(text) for questions, match_answer(answer, question) for generated answers,
    match_many(texts) for a batch. Build once (about 0.5 s for the shipped benchmarks);
    matching takes about 0.1 ms per question. `rule`, `version` and `fingerprint` (benchmark
    set + decision rule + normalizer version) are what a verdict should record.
    """

    rule = "decontam_ngram"
    version = 1

    def __init__(self, items: Iterable[BenchmarkItem | tuple], decision: DecisionRule = DecisionRule()):
        self.decision = decision
        self.items: list[BenchmarkItem] = []
        self.stats = IndexStats()
        self._vocab: dict[str, int] = {}
        self._postings: dict[int, int | tuple[int, ...]] = {}  # n-gram key -> item index or indices
        self._sizes: list[int] = []  # distinct grams per item
        self._nums: list[Counter] = []  # numbers per item (multiset)
        self._short: dict[int, dict[int, list[int]]] = {}  # length -> whole-item key -> items
        digest = hashlib.sha256(f"{decision}|norm{NORMALIZER_VERSION}".encode())
        for raw in items:
            item = raw if isinstance(raw, BenchmarkItem) else BenchmarkItem(*raw)
            if item.kind not in KINDS:
                raise ValueError(f"benchmark item {item.benchmark}/{item.item_id}: kind {item.kind!r} not in {KINDS}")
            digest.update(f"\x00{item.benchmark}\x00{item.item_id}\x00{item.kind}\x00{item.text}".encode())
            self._add(item)
        self.stats.ngrams = len(self._postings)
        self._order_free = None
        if decision.order_free_min_coverage:
            # they build on this module
            from filters.screening.decontam_rewrites import FormulaIndex, OrderFreeIndex, RewriteRule

            questions = [i for i in self.items if i.kind == "question"]
            rewrites = RewriteRule(min_score=decision.order_free_min_score,
                                   min_coverage=decision.order_free_min_coverage)
            digest.update(f"\x00{rewrites}".encode())  # its other knobs are part of the rule too
            self._order_free = OrderFreeIndex(questions, rewrites)
            self._formulas = FormulaIndex(questions)
        # Identifies the benchmark set and the rule: store it with verdicts so a changed
        # benchmark set or rule is visible (and re-checkable) in the database.
        self.fingerprint = digest.hexdigest()[:16]

    # -- building

    def _ids(self, toks: list[str], grow: bool) -> list[int]:
        vocab = self._vocab
        if grow:
            return [vocab.setdefault(t, len(vocab)) for t in toks]
        return [vocab.get(t, -1) for t in toks]

    def _add(self, item: BenchmarkItem) -> None:
        toks = tokenize(item.text)
        n = self.decision.n
        least = self.decision.min_question_tokens if item.kind == "question" else self.decision.min_solution_tokens
        if len(toks) < least:
            self.stats.skipped_items.append((item.benchmark, item.item_id, item.kind))
            return
        idx = len(self.items)
        self.items.append(item)
        self._nums.append(_numbers(toks))
        self.stats.items += 1
        self.stats.items_by_benchmark[item.benchmark] = self.stats.items_by_benchmark.get(item.benchmark, 0) + 1
        ids = self._ids(toks, grow=True)
        if len(ids) < n:
            self.stats.short_items += 1
            self._short.setdefault(len(ids), {}).setdefault(hash(tuple(ids)), []).append(idx)
            self._sizes.append(1)
            return
        keys = set(_gram_keys(ids, n))
        self._sizes.append(len(keys))
        postings = self._postings
        for key in keys:
            have = postings.get(key)
            if have is None:
                postings[key] = idx
            elif isinstance(have, int):
                postings[key] = (have, idx)
            else:
                postings[key] = have + (idx,)

    # -- measuring

    def candidates(self, text: str, kinds: tuple[str, ...] = ("question",), exclude: str | None = None,
                   whole_short_items: bool = True) -> list[Candidate]:
        """Every item (of the given kinds) sharing at least one n-gram with `text`, with its
        overlap measures, best first. n-grams that also occur in `exclude` (an answer's own
        question) are not counted. Items shorter than n tokens are looked up as a whole
        unless `whole_short_items` is False. This is what `match` decides on."""
        n = self.decision.n
        toks = tokenize(text)
        ids = self._ids(toks, grow=False)
        keys = _gram_keys(ids, n)
        own: set[int] = set()
        own_short: set[int] = set()
        if exclude:
            xids = self._ids(tokenize(exclude), grow=False)
            own = set(_gram_keys(xids, n))
            for length in (self._short if whole_short_items else ()):
                own_short.update(hash(g) for g in zip(*(xids[i:] for i in range(length))))
        # Grams with a token the index has never seen cannot match; they still count in the
        # query's size (query coverage). Excluded grams count nowhere.
        distinct = set(keys)
        if own:
            distinct -= own
        query_size = len(distinct)
        found = set(filter(self._postings.__contains__, distinct))  # usually (nearly) empty
        hits: dict[int, list[int]] = {}
        postings = self._postings
        for pos, key in enumerate(keys):
            if key not in found:
                continue
            have = postings[key]
            if isinstance(have, int):
                hits.setdefault(have, []).append(pos)
            else:
                for idx in have:
                    hits.setdefault(idx, []).append(pos)
        qnums = _numbers(toks) if hits or self._short else Counter()
        out: list[Candidate] = []
        for idx, positions in hits.items():
            item = self.items[idx]
            if item.kind not in kinds:
                continue
            shared = len({keys[p] for p in positions})
            longest = run = 0
            prev = -2
            for p in positions:
                run = run + 1 if p == prev + 1 else 1
                prev = p
                if run > longest:
                    longest = run
            out.append(Candidate(item, shared / self._sizes[idx], shared / query_size if query_size else 0.0,
                                 longest + n - 1, shared, _within(self._nums[idx], qnums),
                                 _within(qnums, self._nums[idx])))
        for length, table in (self._short.items() if whole_short_items else ()):
            whole: set[int] = set()
            for g in zip(*(ids[i:] for i in range(length))):
                key = hash(g)
                if key in table and key not in own_short and -1 not in g:
                    whole.update(table[key])
            for idx in sorted(whole):
                item = self.items[idx]
                if item.kind in kinds:
                    out.append(Candidate(item, 1.0, 0.0, length, 1, True, _within(qnums, self._nums[idx])))
        out.sort(key=lambda c: (-max(c.item_coverage, c.query_coverage), -c.longest_span, c.item.benchmark,
                                c.item.item_id, c.item.kind))
        return out

    # -- deciding

    def decide(self, cand: Candidate) -> list[str]:
        """The reasons this candidate counts as a match (empty: it does not)."""
        rule = self.decision
        n = rule.n
        why: list[str] = []
        # numbers are checked for benchmark questions only: a reproduced solution need not
        # repeat every number of a long reference solution
        numbers = not rule.numbers_must_agree or cand.item.kind != "question"
        if cand.item_coverage >= rule.min_item_coverage and (numbers or cand.item_numbers_in_query):
            short = cand.longest_span < n
            why.append("the whole (short) item appears verbatim" if short else
                       f"{cand.item_coverage:.0%} of the item's {n}-grams are in the text")
        if (cand.query_coverage >= rule.min_query_coverage and cand.shared_ngrams >= rule.min_shared_for_query_coverage
                and (numbers or cand.query_numbers_in_item)):
            why.append(f"{cand.query_coverage:.0%} of the text's {n}-grams are in the item")
        if cand.longest_span >= rule.min_span:
            why.append(f"a shared run of {cand.longest_span} tokens")
        return why

    def _first_match(self, cands: list[Candidate]) -> Match | None:
        for cand in cands:
            why = self.decide(cand)
            if why:
                item = cand.item
                return Match(
                    benchmark=item.benchmark, item_id=item.item_id, kind=item.kind,
                    score=round(max(cand.item_coverage, cand.query_coverage), 4),
                    item_coverage=round(cand.item_coverage, 4), query_coverage=round(cand.query_coverage, 4),
                    longest_span=cand.longest_span, shared_ngrams=cand.shared_ngrams,
                    numbers_agree=cand.item_numbers_in_query,
                    reason=f"{item.benchmark} {item.kind} {item.item_id}: " + "; ".join(why),
                )
        return None

    def match(self, text: str, kinds: tuple[str, ...] = ("question",)) -> Match | None:
        """The benchmark item a question overlaps, or None. Only benchmark questions are
        matched by default (solutions are for answers: see match_answer). Of several
        matching items, the one with the highest score is reported. Where no n-gram decision
        matches, a rewritten question (other numbers, names, words, order) is looked for
        by the rewrite check (DecisionRule.order_free_min_coverage, filters/screening/decontam_rewrites.py)."""
        found = self._first_match(self.candidates(text, kinds))
        if found is None and self._order_free is not None and "question" in kinds:
            found = self._rewritten(text)
        return found

    def _rewritten(self, text: str) -> Match | None:
        hit = self._order_free.best(text)
        if hit is None:
            return self._same_formula(text)
        item = hit.item
        nums = ("numbers masked (a word problem)" if hit.numbers_free else
                "other numbers" if hit.how.startswith("same template") else "the numbers agree")
        frame = ", a prompt around it set aside" if hit.framed else ""
        return Match(
            benchmark=item.benchmark, item_id=item.item_id, kind=item.kind,
            score=max(hit.item_coverage, hit.query_coverage), item_coverage=hit.item_coverage,
            query_coverage=hit.query_coverage, longest_span=0, shared_ngrams=0,
            numbers_agree=not hit.numbers_free and not hit.how.startswith("same template"),
            reason=(f"{item.benchmark} {item.kind} {item.item_id}: rewritten ({hit.how}): words cover "
                    f"{hit.item_coverage:.0%} of the item and {hit.query_coverage:.0%} of the text, in order "
                    f"{hit.item_tiled:.0%} / {hit.query_tiled:.0%}, {nums}{frame}"),
        )

    def _same_formula(self, text: str) -> Match | None:
        item = self._formulas.best(text)
        if item is None:
            return None
        return Match(benchmark=item.benchmark, item_id=item.item_id, kind=item.kind, score=1.0, item_coverage=1.0,
                     query_coverage=1.0, longest_span=0, shared_ngrams=0, numbers_agree=True,
                     reason=f"{item.benchmark} {item.kind} {item.item_id}: rewritten: the text holds the item's "
                            "formulas (canonical form) and little other math")

    def match_many(self, texts: Iterable[str], kinds: tuple[str, ...] = ("question",)) -> list[Match | None]:
        return [self.match(t, kinds) for t in texts]

    def match_answer(self, answer: str, question: str | None = None,
                     kinds: tuple[str, ...] = KINDS) -> Match | None:
        """Is a generated answer contaminated? The answer's n-grams that also occur in its own
        question are ignored (restating the question is normal); what the model wrote beyond
        that is matched against benchmark questions and solutions with the same rule. Short
        benchmark questions (under n tokens, e.g. "Simplify $\\sqrt{242}$.") are not looked
        for in answers: a worked answer may well say exactly that."""
        return self._first_match(self.candidates(answer, kinds, exclude=question, whole_short_items=False))


def question_verdict(match: Match | None, index: NgramIndex) -> dict:
    """The fields of a `question_verdicts` row (stage "decontam") for one question's
    `index.match(text)` result; `details` names the matched item and the benchmark set."""
    details: dict = {"benchmarks": index.fingerprint}
    if match is not None:
        details.update({k: v for k, v in asdict(match).items() if k != "reason"})
    return {"stage": "decontam", "rule": index.rule, "rule_version": index.version, "passed": match is None,
            "score": match.score if match is not None else 0.0,
            "reason": match.reason if match is not None else None, "details": details}
