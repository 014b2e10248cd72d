"""Question dedup (filters/screening/dedup.py): exact duplicates modulo formatting, near duplicates
with MinHash LSH, deterministic clusters and representatives, and a run over the 21.7k
shipped questions (counts, timing, a spot check of near pairs). Run with -s to see them.
"""

from __future__ import annotations

import difflib
import json
import random
import re
import time
from collections import Counter, defaultdict

import pytest

from filters.screening.dedup import (
    RULE,
    VERSION,
    DedupItem,
    DedupParams,
    dedup_tokens,
    deduplicate,
    exact_key,
    numbers_of,
    question_verdict,
    shingles,
)
from tests.conftest import DATA
from tests.filters.test_decontam import shipped_questions


def by_id(verdicts):
    return {v.item_id: v for v in verdicts}


@pytest.fixture(scope="module")
def gsm8k_train() -> list[dict]:
    with (DATA / "seeds" / "gsm8k_train.jsonl").open() as f:
        return [json.loads(line) for line in f]


# --- exact ---------------------------------------------------------------------------------------


def test_exact_duplicates_modulo_whitespace_case_and_formatting():
    base = "What is $x^2 + 1,000$ when $x = 3$?"
    variants = [
        "what is  $x^{2}+1000$ when\n$x=3$?",
        "WHAT IS $x^2 + 1,000$ WHEN $x = 3.0$?",
        "What is \\(x^2\\,+\\,1{,}000\\) when \\(x = 3\\)?",
    ]
    assert len({exact_key(t) for t in [base, *variants]}) == 1
    assert exact_key("a b") != exact_key("ab")  # spaces between words matter
    assert exact_key("2+3") != exact_key("2-3")
    out = deduplicate([("q0", base)] + [(f"q{i + 1}", t) for i, t in enumerate(variants)] + [("other", "What is 7?")])
    v = by_id(out)
    assert v["q0"].is_representative and v["q0"].kind == "representative" and v["q0"].cluster_id == "q0"
    for i in (1, 2, 3):
        assert (v[f"q{i}"].cluster_id, v[f"q{i}"].kind, v[f"q{i}"].is_representative) == ("q0", "exact", False)
        assert v[f"q{i}"].reason == "exact duplicate of q0" and v[f"q{i}"].similarity == 1.0
    assert v["other"].kind == "unique" and v["other"].is_representative and v["other"].cluster_id == "other"
    assert {(x.rule, x.version) for x in out} == {(RULE, VERSION)}
    assert "4 questions" in v["q0"].reason
    row = question_verdict(v["q1"])
    assert (row["stage"], row["rule"], row["passed"], row["details"]["cluster_id"], row["details"]["kind"]) == \
        ("dedup", "dedup", False, "q0", "exact")
    assert question_verdict(v["q0"])["passed"] and json.dumps(row)


def test_repeated_id_is_an_exact_duplicate():
    v = deduplicate([("a", "Some question about trains and speed."), ("a", "Some question about trains and speed.")])
    assert [(x.kind, x.cluster_id, x.is_representative) for x in v] == [("representative", "a", True),
                                                                         ("exact", "a", False)]


# --- near ---------------------------------------------------------------------------------------


_NUMBER_WORDS = set("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                    "fifteen sixteen seventeen eighteen nineteen twenty".split())


def _replace_words(text: str, k: int, rng: random.Random) -> str:
    """Replace k distinct words of 4+ letters (not number words) with other words."""
    spans = [m.span() for m in re.finditer(r"(?<![\\\w])[A-Za-z]{4,}(?!\w)", text)
             if m.group(0).lower() not in _NUMBER_WORDS]
    for start, end in sorted(rng.sample(spans, k), reverse=True):
        text = text[:start] + rng.choice(["purple", "giraffe", "lantern", "mango"]) + text[end:]
    return text


def test_near_duplicates_few_words_changed_are_clustered(gsm8k_train):
    """Real GSM8K questions with 1 word replaced (30+ tokens), 2 words (60+ tokens) or 3 words
    (90+ tokens), plus whitespace / case noise: Jaccard stays >= 0.8 on 3-gram shingles."""
    rng = random.Random(3)
    items, expect = [], {}
    for i, rec in enumerate(gsm8k_train[:3000]):
        q = rec["question"]
        n = len(dedup_tokens(q))
        k = 3 if n >= 90 else 2 if n >= 60 else 1 if n >= 30 else 0
        if k == 0:
            continue
        edited = _replace_words(q, k, rng)
        edited = edited.upper() if i % 3 == 0 else re.sub(r" ", "  ", edited)
        items += [(f"orig{i}", q), (f"edit{i}", edited)]
        expect[f"edit{i}"] = f"orig{i}"
    v = by_id(deduplicate(items))
    clustered = [e for e, o in expect.items() if v[e].cluster_id == o and v[e].kind == "near"]
    print(f"\nnear duplicates clustered: {len(clustered)}/{len(expect)}; "
          f"Jaccard min {min(v[e].similarity for e in clustered):.2f}")
    assert len(clustered) >= 0.98 * len(expect)
    assert all(v[o].is_representative for o in expect.values())
    assert all(v[e].reason.startswith(f"near duplicate of {expect[e]} (Jaccard ") for e in clustered)


def test_different_questions_are_not_clustered(gsm8k_train):
    # the first 2000 GSM8K questions are different problems: no near cluster among them
    items = [(f"g{i}", r["question"], r["answer"].rsplit("####", 1)[1].strip())
             for i, r in enumerate(gsm8k_train[:2000])]
    out = deduplicate(items)
    assert Counter(x.kind for x in out) == {"unique": 2000}
    # template siblings: same words, other numbers (different problems)
    sib = deduplicate([
        ("a", "A train travels 270 miles in 3 hours. At the same rate, how many additional hours would it take "
              "to travel an additional 180 miles?"),
        ("b", "A train travels 360 miles in 3 hours. At the same rate, how many additional hours would it take "
              "to travel an additional 240 miles?"),
        ("c", "I have a piano, a flute, and four trombones. How many musical instruments do I have?"),
        ("d", "I have a piano, a flute, and three trombones. How many musical instruments do I have?"),
    ])
    assert all(x.kind == "unique" for x in sib)
    # same text but a different reference answer: a different question ("largest" / "smallest")
    q1 = ("The integer $n$ is the largest positive multiple of $15$ such that every digit of $n$ is either $8$ or "
          "$0$. Compute $\\frac{n}{15}$.")
    q2 = q1.replace("largest", "smallest")
    assert [x.kind for x in deduplicate([("l", q1, "8880"), ("s", q2, "592")])] == ["unique", "unique"]
    # with the same answer (or without answers) text alone decides (Jaccard 0.77 here)
    loose = DedupParams(min_jaccard=0.75)
    assert deduplicate([("l", q1, "592"), ("s", q2, "592")], loose)[1].kind == "near"
    assert deduplicate([("l", q1), ("s", q2)], loose)[1].kind == "near"
    assert deduplicate([("l", q1), ("s", q2)])[1].kind == "unique"  # below the default 0.8


def test_near_false_gives_exact_dedup_only():
    q = ("Alice, Bob, and Claire are playing a game. At the start of the game, they are each holding a ball: "
         "Alice has a pink ball, Bob has a white ball. At the end of the game, Alice has the")
    items = [DedupItem("1", q, near=False), DedupItem("2", q.replace("Alice has the", "Bob has the"), near=False),
             DedupItem("3", q.upper(), near=False)]
    v = by_id(deduplicate(items))
    assert v["2"].kind == "unique" and v["3"].kind == "exact" and v["3"].cluster_id == "1"
    assert deduplicate([(i.item_id, i.text) for i in items])[1].kind == "near"
    assert [x.kind for x in deduplicate([(i.item_id, i.text) for i in items], near=False)] == \
           ["representative", "unique", "exact"]


def test_helpers():
    assert shingles(["a", "b"]) == {"a b"} and shingles([]) == set()
    assert shingles(["a", "b", "c", "d"]) == {"a b c", "b c d"}
    assert numbers_of(dedup_tokens("four cats and 4 dogs, 2.50 kg")) == Counter({"4": 2, "2.5": 1})
    assert dedup_tokens("2+3=5") == ["2", "+", "3", "=", "5"]


# --- determinism ---------------------------------------------------------------------------------


def test_deterministic_clusters_and_representatives(gsm8k_train):
    rng = random.Random(5)
    items = []
    for i, rec in enumerate(gsm8k_train[:400]):
        items.append((f"o{i}", rec["question"]))
        if i % 4 == 0:
            items.append((f"x{i}", rec["question"].lower()))
        if i % 4 == 1 and len(dedup_tokens(rec["question"])) >= 30:
            items.append((f"n{i}", _replace_words(rec["question"], 1, rng)))
    first = deduplicate(items)
    assert deduplicate(items) == first  # same input, same verdicts
    assert deduplicate(list(items)) == deduplicate(iter(items))
    # another order: the representative is the first member in that order, membership is the same
    rev = by_id(deduplicate(list(reversed(items))))
    clusters = defaultdict(set)
    for x in first:
        clusters[x.cluster_id].add(x.item_id)
    position = {item_id: p for p, (item_id, _t) in enumerate(reversed(items))}
    for members in clusters.values():
        assert len({rev[m].cluster_id for m in members}) == 1
        assert rev[next(iter(members))].cluster_id == min(members, key=position.get)
    assert sum(len(m) > 1 for m in clusters.values()) >= 100


# --- the shipped pools ----------------------------------------------------------------------------


def _diff(a: str, b: str) -> list:
    sm = difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False)
    return [(" ".join(a.split()[i1:i2]), " ".join(b.split()[j1:j2])) for op, i1, i2, j1, j2 in sm.get_opcodes()
            if op != "equal"]


def test_dedup_on_the_shipped_pools():
    questions = shipped_questions()
    items = [(q.question_id, q.text, q.reference_answer) for q in questions]  # pool order, as ingested
    start = time.perf_counter()
    out = deduplicate(items)
    elapsed = time.perf_counter() - start
    assert len(out) == len(questions)
    source = [q.source for q in questions]
    text = {q.question_id: q.text for q in questions}
    first_source: dict[str, str] = {}
    for q in questions:
        first_source.setdefault(q.question_id, q.source)
    kinds = Counter(x.kind for x in out)
    members = defaultdict(list)
    for x in out:
        members[x.cluster_id].append(x)
    multi = {c: m for c, m in members.items() if len(m) > 1}
    n_exact = sum(any(x.kind == "exact" for x in m) and not any(x.kind == "near" for x in m) for m in multi.values())
    n_near = sum(any(x.kind == "near" for x in m) for m in multi.values())
    pairs = Counter((first_source[x.duplicate_of], s, x.kind)
                    for x, s in zip(out, source) if x.kind in ("exact", "near"))
    print(f"\n{len(questions)} questions deduplicated in {elapsed:.1f} s: {dict(kinds)}")
    print(f"  {len(multi)} clusters with duplicates: {n_exact} exact only, {n_near} with near members; "
          f"{len(questions) - sum(x.is_representative for x in out)} questions would be dropped")
    print("  (representative source, duplicate source, kind):", dict(pairs.most_common()))
    # BIG-bench tasks are templated minimal pairs: how much of 'near' they make up
    bb = sum(1 for x, s in zip(out, source) if x.kind == "near" and s.startswith("bigbench"))
    print(f"  near members in BIG-bench tasks: {bb} of {kinds['near']}")

    # every exact member has its representative's normalized text; every near member is
    # verified: Jaccard >= 0.8 recomputed, no number changed
    params = DedupParams()
    for x in out:
        if x.kind == "exact":
            assert exact_key(text[x.item_id]) == exact_key(text[x.duplicate_of])
        elif x.kind == "near":
            a, b = dedup_tokens(text[x.item_id]), dedup_tokens(text[x.duplicate_of])
            sa, sb = shingles(a), shingles(b)
            jaccard = len(sa & sb) / len(sa | sb)
            assert jaccard == pytest.approx(x.similarity, abs=1e-4) and jaccard >= params.min_jaccard
            na, nb = numbers_of(a), numbers_of(b)
            assert not (na - nb) or not (nb - na)  # one contains the other: no number changed
            assert x.duplicate_of == x.cluster_id  # leader clustering: directly similar to the representative
    # the AIME pool repeats MATH-train problems (266 with identical text); the pipeline's
    # question ids (whitespace-insensitive hashes) already merge 292 rows
    assert pairs[("math", "aime", "exact")] >= 290
    assert n_exact >= 300 and n_near >= 100
    assert elapsed < 30, elapsed

    # spot check: 10 near pairs spread over the sorted list, shown as word diffs
    near = sorted(((x, s) for x, s in zip(out, source) if x.kind == "near"), key=lambda p: p[0].item_id)
    step = max(1, len(near) // 10)
    print("  spot check of near pairs (representative -> duplicate, word diff):")
    for x, s in near[::step][:10]:
        print(f"   {first_source[x.duplicate_of]}->{s} {x.duplicate_of}~{x.item_id} J={x.similarity:.2f} "
              f"diff={_diff(text[x.duplicate_of], text[x.item_id])[:4]}")

    # exact-only dedup of BIG-bench (near=False) as the pipeline may configure it
    scoped = deduplicate(DedupItem(q.question_id, q.text, q.reference_answer, near=not q.source.startswith("bigbench"))
                         for q in questions)
    print(f"  with BIG-bench exact-only: {dict(Counter(x.kind for x in scoped))}")
