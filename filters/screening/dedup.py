"""Question dedup: exact duplicates on normalized text, near duplicates with MinHash LSH.

Pure: questions in, one `DedupVerdict` per question out, in input order. No I/O.

    verdicts = deduplicate([DedupItem(question_id, text, reference_answer), ...])
    # or tuples (question_id, text[, reference_answer[, near]])

Exact: equal `exact_key`s, i.e. equal text after `filters.screening.decontam.normalize` (NFKC, case,
whitespace, LaTeX spacing/markup, number formatting) with the spaces next to punctuation and
operators removed ("x^2 + 1" == "x^2+1", but "a b" != "ab").

Near: word 3-gram shingles of the dedup tokens (the decontam word tokens plus the operator
characters + - * / = < > ^ % !, so "2+3" and "2-3" differ); MinHash (datasketch, 100
permutations, seed 1) into a MinHashLSH of 20 bands x 5 rows; every LSH candidate verified
with the *exact* Jaccard of the two shingle sets (so the similarity in a reason is exact,
not an estimate). Two questions are near duplicates when

  * Jaccard >= 0.8, and
  * the numbers of one contain the numbers of the other (multisets; the words zero..twenty
    count as numbers): text may be added around a problem, but no number may be changed, and
  * their reference answers agree (compared as dedup tokens), when both have one.

The last two rules keep *template siblings* apart: GSM8K, MATH and BIG-bench have many
questions that differ only in their numbers ("270 miles in 3 hours" / "360 miles") or in
one word that changes the answer ("the largest multiple" / "the smallest"); those are
different problems.

Why these parameters (measured on the 21.7k shipped questions; tests/filters/test_dedup.py):
3-gram shingles because questions are short: one changed word in a 40-word question leaves
Jaccard 0.85 on 3-grams (0.76 on 5-grams), two changed words need about 60 words. The
AIME pool repeats about 390 MATH-train problems: 351 are exact duplicates after
normalization, the rest re-typeset (`$3$` vs `3`, `{{m+n\\pi}\\over p}` vs `\\frac{m+n\\pi}{p}`,
AoPS remarks appended). Near members by threshold (AIME re-typesets / BIG-bench / other):
0.7: 45/497/21, 0.75: 42/299/19, 0.8: 37/186/15, 0.85: 22/87/8 (numbers rule as above;
with equal numbers required 27/152/13, without a numbers rule 37/201/19, without the
answer rule 28/869/65). Outside BIG-bench, about 87% of the near pairs at 0.8 are real
duplicates (45 of 52 checked by eye); the rest are siblings that changed one word and kept
the answer ("letters of the word RADII" / "PROOF", "calculate w" / "calculate Delta U").
LSH 20 x 5: a pair becomes a candidate with probability 1 - (1 - J^5)^20 = 0.9996 at
J = 0.8; a 40 x 3 index found no additional pair on the pools.

What text similarity cannot see: BIG-bench tasks are built from minimal pairs (the same
story with "either/or" vs "both/and", the same penguin table asking "tallest" vs
"youngest", the same swaps asked about Alice or Bob). When such a pair has the same answer
by chance (Yes/No, 3-5 options), it is clustered although it is not a duplicate: most of
the 186 BIG-bench near members above are such pairs. Pass `near=False` for items of
templated sources to give them exact dedup only.

Clustering is greedy and deterministic ("leader" clustering in input order): each question
is compared with the representatives seen so far and joins the most similar one (ties: the
earliest), or becomes a representative. Every member is therefore directly similar to its
representative (no chains A~B~C where A and C differ), and the representative of a cluster
is its first member in the given order: pass the questions in a stable order (e.g. the
order they were ingested, or sorted by question_id).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from datasketch import MinHash, MinHashLSH

from filters.screening.decontam import normalize

RULE = "dedup"
VERSION = 1

_SPACE_AT_SYMBOL = re.compile(r" (?=[^\w ])|(?<=[^\w ]) ")  # on normalized text (single spaces)
_DEDUP_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|[-+*/=<>^%!]")
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}


def _key_of_normalized(norm: str) -> str:
    return hashlib.sha256(_SPACE_AT_SYMBOL.sub("", norm).encode("utf-8")).hexdigest()[:16]


def exact_key(text: str) -> str:
    """Key of the normalized text: equal keys are exact duplicates."""
    return _key_of_normalized(normalize(text))


def dedup_tokens(text: str) -> list[str]:
    return _DEDUP_TOKEN.findall(normalize(text))


def shingles(tokens: Sequence[str], k: int = 3) -> set[str]:
    """Word k-grams; a text shorter than k tokens is one shingle."""
    if len(tokens) < k:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i:i + k]) for i in range(len(tokens) - k + 1)}


def numbers_of(tokens: Iterable[str]) -> Counter:
    """Numbers as a multiset; number words count as their digits ("four" == "4")."""
    out: Counter = Counter()
    for t in tokens:
        if t[0].isdigit():
            out[t] += 1
        elif t in _NUMBER_WORDS:
            out[_NUMBER_WORDS[t]] += 1
    return out


def _within(part: Counter, whole: Counter) -> bool:
    return all(whole[k] >= v for k, v in part.items())


def _hash32(data: bytes) -> int:
    # Deterministic and fast. MinHash's affine32 scheme mixes it with the MurmurHash3
    # finalizer before permuting; datasketch's default (sha1) is about 3x slower here.
    return zlib.crc32(data)


@dataclass(frozen=True)
class DedupParams:
    shingle_size: int = 3
    min_jaccard: float = 0.8  # exact Jaccard of the shingle sets
    same_numbers: bool = True  # near duplicates: the numbers of one contain those of the other
    same_answer: bool = True  # ... and the same reference answer, when both have one
    lsh_bands: int = 20
    lsh_rows: int = 5
    seed: int = 1

    @property
    def num_perm(self) -> int:
        return self.lsh_bands * self.lsh_rows

    def describe(self) -> str:
        extra = (" and no number changed" if self.same_numbers else "") + (
            " and the same reference answer (when both have one)" if self.same_answer else "")
        return (f"exact: normalized text; near: Jaccard >= {self.min_jaccard} of word {self.shingle_size}-gram "
                f"shingles{extra} (MinHash LSH {self.lsh_bands}x{self.lsh_rows}, verified exactly)")


@dataclass(frozen=True)
class DedupItem:
    item_id: str
    text: str
    answer: str | None = None  # the reference answer, if any
    near: bool = True  # False: exact dedup only (e.g. templated sources such as BIG-bench)


@dataclass(frozen=True)
class DedupVerdict:
    item_id: str
    cluster_id: str  # the representative's id (a question without duplicates is its own cluster)
    is_representative: bool  # keep this one; drop the others of its cluster
    kind: str  # "unique", "representative", "exact" or "near"
    duplicate_of: str | None  # exact / near: the question it duplicates
    similarity: float | None  # near: exact Jaccard to duplicate_of; exact: 1.0
    rule: str
    version: int
    reason: str


@dataclass
class _Rep:
    shingles: set[str]
    numbers: Counter
    answer: tuple[str, ...] | None


def _as_item(row) -> DedupItem:
    return row if isinstance(row, DedupItem) else DedupItem(*row)


def deduplicate(items: Iterable[DedupItem | tuple], params: DedupParams = DedupParams(),
                near: bool = True) -> list[DedupVerdict]:
    """One verdict per item, in input order; see the module docstring.

    Items are `DedupItem`s or tuples (item_id, text[, answer[, near]]). A repeated item_id
    is an exact duplicate of its first row (ids are content hashes in this project).
    `near=False` runs exact dedup only.
    """
    rows = [_as_item(r) for r in items]
    first_by_key: dict[str, int] = {}  # exact key -> position of its first holder
    first_by_id: dict[str, int] = {}
    cluster_of = list(range(len(rows)))  # position -> position of its representative
    kind = ["unique"] * len(rows)
    dup_of: list[int | None] = [None] * len(rows)
    sim: list[float | None] = [None] * len(rows)
    lsh = MinHashLSH(num_perm=params.num_perm, params=(params.lsh_bands, params.lsh_rows)) if near else None
    reps: dict[int, _Rep] = {}
    perms = None
    for pos, item in enumerate(rows):
        first = first_by_id.setdefault(item.item_id, pos)
        if first == pos:
            norm = normalize(item.text)
            first = first_by_key.setdefault(_key_of_normalized(norm), pos)
        if first != pos:
            cluster_of[pos], kind[pos], dup_of[pos], sim[pos] = cluster_of[first], "exact", first, 1.0
            continue
        if lsh is None or not item.near:
            continue
        toks = _DEDUP_TOKEN.findall(norm)
        sh = shingles(toks, params.shingle_size)
        if not sh:
            continue
        nums = numbers_of(toks)
        answer = tuple(dedup_tokens(str(item.answer))) if item.answer is not None else None
        mh = MinHash(num_perm=params.num_perm, seed=params.seed, hashfunc=_hash32, permutations=perms,
                     scheme="affine32")
        perms = mh.permutations  # reused: generating them is the slow part of MinHash()
        mh.update_batch([s.encode("utf-8") for s in sh])
        best: tuple[float, int] | None = None
        for cand in sorted(lsh.query(mh)):
            rep = reps[cand]
            if params.same_numbers and not (_within(nums, rep.numbers) or _within(rep.numbers, nums)):
                continue
            if params.same_answer and answer and rep.answer and answer != rep.answer:
                continue
            j = len(sh & rep.shingles) / len(sh | rep.shingles)
            if j >= params.min_jaccard and (best is None or j > best[0]):
                best = (j, cand)
        if best is not None:
            cluster_of[pos], kind[pos], dup_of[pos], sim[pos] = best[1], "near", best[1], best[0]
            continue
        reps[pos] = _Rep(sh, nums, answer)
        lsh.insert(pos, mh, check_duplication=False)
    size = Counter(cluster_of)
    out: list[DedupVerdict] = []
    for pos, item in enumerate(rows):
        rep = cluster_of[pos]
        k = "representative" if kind[pos] == "unique" and size[pos] > 1 else kind[pos]
        ref = rows[dup_of[pos]].item_id if dup_of[pos] is not None else None
        if k == "unique":
            reason = "no duplicate"
        elif k == "representative":
            reason = f"representative of {size[pos]} questions (first in order)"
        elif k == "exact":
            reason = f"exact duplicate of {ref}" + (f" (cluster {rows[rep].item_id})" if rep != dup_of[pos] else "")
        else:
            reason = f"near duplicate of {ref} (Jaccard {sim[pos]:.2f})"
        out.append(DedupVerdict(item_id=item.item_id, cluster_id=rows[rep].item_id, is_representative=rep == pos,
                                kind=k, duplicate_of=ref, similarity=None if sim[pos] is None else round(sim[pos], 4),
                                rule=RULE, version=VERSION, reason=reason))
    return out


def question_verdict(verdict: DedupVerdict, params: DedupParams = DedupParams()) -> dict:
    """The fields of a `question_verdicts` row (stage "dedup"): passed = kept (the
    representative of its cluster, or no duplicate)."""
    return {"stage": "dedup", "rule": verdict.rule, "rule_version": verdict.version,
            "passed": verdict.is_representative, "score": verdict.similarity, "reason": verdict.reason,
            "details": {"cluster_id": verdict.cluster_id, "kind": verdict.kind, "duplicate_of": verdict.duplicate_of,
                        "params": params.describe()}}
