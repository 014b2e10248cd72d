"""Benchmark decontamination (filters/screening/decontam.py, pipeline/benchmarks.py).

Recall: every question of every shipped benchmark, planted exactly, lightly perturbed
(whitespace, number formatting, LaTeX spacing and markup) and inside a longer question, is
caught. False positives: the 21.7k questions of the shipped training pools, read exactly as
the pipeline reads them, are flagged at most 1%, and what is flagged is listed. Generated
answers: a reproduced benchmark solution or a quoted benchmark question is caught; restating
the answer's own question is not; real answers (GSM8K / MBPP references, Qwen2.5-Math CoT)
are not flagged. Run with -s to see the tables.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import time
from collections import Counter, defaultdict
from functools import lru_cache

import pytest

from filters.decontam_answer import AnswerContamination
from filters.screening.decontam import (
    BenchmarkItem,
    DecisionRule,
    NgramIndex,
    normalize,
    question_verdict,
    tokenize,
)
from pipeline.benchmarks import (
    SHIPPED,
    BenchmarkError,
    BenchmarkFileConfig,
    build_index,
    load_benchmark_file,
    load_benchmarks,
    load_shipped,
)
from tests.conftest import DATA

# --- shared data (cached per process: test_dedup.py reuses shipped_questions) -------------------


@lru_cache(maxsize=1)
def shipped_questions() -> tuple:
    """All questions of the shipped pools, read exactly as the pipeline reads them."""
    from pipeline.config_loading import load_run_config
    from pipeline.pools import read_pool

    questions = []
    for pool in load_run_config().pools:
        result = read_pool(pool)
        assert not result.quarantine, f"{pool.path}: {result.quarantine[:3]}"
        questions += result.questions
    return tuple(questions)


@lru_cache(maxsize=1)
def index() -> NgramIndex:
    return build_index()


@lru_cache(maxsize=1)
def benchmark_questions() -> tuple[BenchmarkItem, ...]:
    return tuple(i for i in load_shipped() if i.kind == "question")


# --- perturbations ---------------------------------------------------------------------------

# a standalone number (1,000 counts as one); not one written with LaTeX separators (912,\!673)
_NUM = re.compile(r"(?<![\w.,!}])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\w|[.,]\d|,\\!|\{,\})")
_MATH = re.compile(r"\$[^$]+\$")


def perturb_whitespace(text: str, rng: random.Random) -> str:
    """More and less whitespace: runs of spaces / newlines / tabs, blank lines dropped,
    the space after a comma dropped (not between numbers: "200, 240" -> "200,240" is another
    number in English notation)."""
    text = re.sub(r"\n\s*\n", "\n", text) if rng.random() < 0.5 else text
    text = re.sub(r"(?<=[,;]) (?=[^\s\d])", lambda m: "" if rng.random() < 0.5 else " ", text)
    return re.sub(r"[ \t]+|\n", lambda m: rng.choice([" ", "  ", "\n", " \n  ", "\t", "   "]), text)


def perturb_numbers(text: str, rng: random.Random) -> str:
    """1000 -> 1,000 and 80,000 -> 80000; 3 -> 3.0; 2.5 -> 2.50."""

    def one(m: re.Match) -> str:
        whole, frac = m.group(1), m.group(2)
        if "," in whole:
            return whole.replace(",", "") + (frac or "")
        if frac:
            return whole + frac + "0"
        if len(whole) >= 4 and whole[0] != "0":
            return f"{int(whole):,}"
        return whole + ".0" if rng.random() < 0.6 else whole

    return _NUM.sub(one, text)


def perturb_latex(text: str, rng: random.Random) -> str:
    """Inside $...$: x^2 -> x^{2}, a_1 -> a_{1}, \\frac -> \\dfrac, ( ) -> \\left( \\right),
    thin spaces around = and + and at the start, \\displaystyle in front."""

    def math(m: re.Match) -> str:
        s = m.group(0)[1:-1]
        s = re.sub(r"\^(\w)(?!\w)", r"^{\1}", s)
        s = re.sub(r"_(\w)(?!\w)", r"_{\1}", s)
        s = re.sub(r"\\frac(?![a-z])", r"\\dfrac", s)
        if s.count("(") == s.count(")") and rng.random() < 0.5:
            s = s.replace("(", r"\left(").replace(")", r"\right)")
        s = re.sub(r"\s*([=+])\s*", lambda m2: rng.choice([r"\,", r"\;", r"\ ", " "]) + m2.group(1) + r"\,", s)
        if rng.random() < 0.3:
            s = r"\displaystyle " + s
        return "$" + rng.choice([r"\,", r"\;", r"\!", r"\ "]) + s + "$"

    return _MATH.sub(math, text)


def has_latex(text: str) -> bool:
    return "\\" in text and bool(_MATH.search(text))  # not GSM8K's "$80,000 ... $50,000"


PREFIX = "My teacher gave us this one for homework and I am stuck, can you help me with it? "
SUFFIX = "\nPlease explain every step and put the final answer at the end."


def combined(text: str, rng: random.Random) -> str:
    text = perturb_latex(text, rng) if has_latex(text) else text
    return perturb_whitespace(perturb_numbers(text, rng), rng)


PERTURBATIONS = {
    "exact": lambda t, r: t,
    "whitespace": perturb_whitespace,
    "numbers": perturb_numbers,
    "latex": perturb_latex,
    "combined": combined,
    "prefix": lambda t, r: PREFIX + combined(t, r),
    "prefix+suffix": lambda t, r: PREFIX + combined(t, r) + SUFFIX,
}


def one_word_changed(text: str, rng: random.Random) -> str:
    """A stronger edit than the tests require: one word (4+ letters) replaced."""
    words = [m for m in re.finditer(r"(?<![\\\w])[A-Za-z]{4,}(?!\w)", text)]
    if not words:
        return text
    m = rng.choice(words)
    return text[: m.start()] + "pineapple" + text[m.end():]


# --- normalization ---------------------------------------------------------------------------


@pytest.mark.parametrize("a,b", [
    ("What is  1,000\n+ 2.50?", "what is 1000 + 2.5?"),
    ("$x^{2} + \\dfrac{1}{2}$", "x^2 + \\frac12"),
    ("$\\left( 3, \\frac{\\pi}{2} \\right)$", "(3,\\frac{\\pi}{2})"),
    ("$\\$24,\\!000$ and 1\\,000 and 1{,}000", "$24000 and 1000 and 1000"),
    ("3.0 apples", "3 apples"),
    ("\\displaystyle\\sum_{k=1}^{n} k", "\\sum_{k=1}^n k"),
    ("Ａｂｃ ＝ ５", "abc = 5"),  # NFKC (full-width)
    ("Janet\u2019s ducks", "janet's ducks"),
])
def test_normalize_equates_formatting_variants(a, b):
    assert tokenize(a) == tokenize(b)


def test_normalize_keeps_what_matters():
    assert tokenize("2.5") != tokenize("25")
    assert tokenize("\\frac{1}{2}") != tokenize("\\frac{12}{}")
    assert tokenize("100") == ["100"]  # trailing zeros of integers stay
    assert tokenize("\\leftarrow") == ["leftarrow"]  # not \left
    for text in ["1.0.0", "is 5.0.", "$\\frac12$ of \\text{cm}", "x^{2}"]:
        assert normalize(normalize(text)) == normalize(text)


# --- loading benchmarks ------------------------------------------------------------------------


def test_shipped_benchmarks_load_with_solutions():
    items = load_shipped()
    counts = Counter((i.benchmark, i.kind) for i in items)
    assert counts == {
        ("math500", "question"): 500, ("math500", "solution"): 500,
        ("aime24", "question"): 30, ("aime24", "solution"): 30,
        ("amc23", "question"): 40,
        ("gsm8k_test", "question"): 1319, ("gsm8k_test", "solution"): 1319,
        ("humaneval", "question"): 164, ("humaneval", "solution"): 164,
    }
    assert not any("<<" in i.text for i in items if i.benchmark == "gsm8k_test")  # calculator annotations gone
    ids = {(i.benchmark, i.item_id) for i in items}
    assert ("math500", "test/precalculus/807.json") in ids and ("humaneval", "HumanEval/0") in ids
    assert ("gsm8k_test", "1") in ids  # line numbers (1-based) where the file has no id


def test_index_skips_only_short_solutions_and_is_deterministic():
    idx = index()
    skipped = Counter((b, k) for b, _i, k in idx.stats.skipped_items)
    assert all(k == "solution" for _b, k in skipped), skipped  # every benchmark question is indexed
    assert idx.stats.short_items > 0  # MATH-500 has questions of 3-7 tokens, matched whole
    again = build_index()
    assert again.fingerprint == idx.fingerprint
    assert build_index(shipped=["gsm8k_test"]).fingerprint != idx.fingerprint


def test_user_benchmark_file(tmp_path):
    path = tmp_path / "my_eval.jsonl"
    path.write_text(json.dumps({"uid": "a1", "prompt": "A farmer has 17 cows and buys 5 more each week for "
                                "9 weeks. How many cows does the farmer have at the end?", "ref": "62"}) + "\n")
    cfg = BenchmarkFileConfig(path=str(path), text_field="prompt", id_field="uid", solution_field="ref")
    items = load_benchmark_file(cfg)
    assert [(i.benchmark, i.item_id, i.kind) for i in items] == [("my_eval", "a1", "question"),
                                                                  ("my_eval", "a1", "solution")]
    idx = build_index([cfg], shipped=False)
    m = idx.match("Quick one: a farmer has 17 cows and buys 5 more each week for 9 weeks. How many cows does "
                  "the farmer have at the end?")
    assert m is not None and (m.benchmark, m.item_id) == ("my_eval", "a1")
    # relative paths against base_dir; gzip; JSON with records_key
    gz = tmp_path / "other.json.gz"
    with gzip.open(gz, "wt") as f:
        json.dump({"data": [{"q": "Some question text that is long enough to index."}]}, f)
    items = load_benchmarks([BenchmarkFileConfig(path="other.json.gz", text_field="q", records_key="data")],
                            shipped=False, base_dir=tmp_path)
    assert [(i.benchmark, i.item_id) for i in items] == [("other", "1")]


@pytest.mark.parametrize("content,cfg,message", [
    (None, {}, "not found"),
    ('{"question": "ok"}\n{not json\n', {}, "line 2: invalid JSON"),
    ('{"question": "ok"}\n{"prompt": "x"}\n', {}, "record 2: text field 'question' is missing"),
    ('{"question": ""}\n', {}, "text field 'question' is empty"),
    ('{"question": 3}\n', {}, "text field 'question' must be text, got int"),
    ("", {}, "no items"),
    ('{"question": "a", "id": 1}\n{"question": "b", "id": 1}\n', {"id_field": "id"}, "duplicate item id '1'"),
    ('{"question": "a", "sol": 5}\n', {"solution_field": "sol"}, "solution field 'sol' must be text"),
    ('{"question": "a", "ref": "x"}\n', {"solution_field": "sol"}, "no record has the solution field 'sol'"),
])
def test_unreadable_benchmark_raises_naming_the_file(tmp_path, content, cfg, message):
    path = tmp_path / "bad.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BenchmarkError) as err:
        build_index([BenchmarkFileConfig(path=str(path), **cfg)], shipped=False)
    assert str(path) in str(err.value) and message in str(err.value)


def test_corrupt_gzip_and_name_clash_raise(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(BenchmarkError, match="x.jsonl.gz: cannot read"):
        load_benchmarks([BenchmarkFileConfig(path=str(path))], shipped=False)
    ok = tmp_path / "math500.jsonl"
    ok.write_text('{"question": "a question"}\n')
    with pytest.raises(BenchmarkError, match="name 'math500' is already used"):
        load_benchmarks([BenchmarkFileConfig(path=str(ok))], shipped=["math500"])
    assert set(SHIPPED) == {"math500", "aime24", "amc23", "gsm8k_test", "humaneval"}
    with pytest.raises(BenchmarkError, match="no benchmark items"):
        build_index(shipped=False)


# --- recall on planted benchmark items ----------------------------------------------------------


def _caught(m, item: BenchmarkItem, same_tokens: dict) -> bool:
    if m is None:
        return False
    # the planted item, or another benchmark item with the same word tokens (HumanEval/56 and
    # /61 differ only in "<>" vs "()"): the text is flagged either way
    return (m.benchmark, m.item_id) in same_tokens[tuple(tokenize(item.text))]


def _recall_table(perturbations: dict) -> tuple[dict, dict, list]:
    idx = index()
    items = benchmark_questions()
    same_tokens: dict = defaultdict(set)
    for i in items:
        same_tokens[tuple(tokenize(i.text))].add((i.benchmark, i.item_id))
    hits: dict = defaultdict(lambda: [0, 0])
    changed: Counter = Counter()
    misses = []
    for name, fn in perturbations.items():
        rng = random.Random(f"decontam-{name}")
        for item in items:
            if name == "latex" and not has_latex(item.text):
                continue
            planted = fn(item.text, rng)
            changed[name] += planted != item.text
            ok = _caught(idx.match(planted), item, same_tokens)
            for key in ((name, item.benchmark), (name, "ALL")):
                hits[key][0] += ok
                hits[key][1] += 1
            if not ok:
                misses.append((name, item.benchmark, item.item_id, planted[:160]))
    table = {k: v[0] / v[1] for k, v in hits.items()}
    counts = {k: v[1] for k, v in hits.items()}
    counts.update({(name, "changed"): n for name, n in changed.items()})
    return table, counts, misses


def _print_table(title: str, table: dict, counts: dict) -> None:
    benches = ["math500", "aime24", "amc23", "gsm8k_test", "humaneval", "ALL"]
    print(f"\n{title}\n{'perturbation':<15}" + "".join(f"{b:>12}" for b in benches))
    for name in dict.fromkeys(k[0] for k in table):
        row = "".join(f"{table[(name, b)]:>11.1%} " if (name, b) in table else f"{'n/a':>12}" for b in benches)
        print(f"{name:<15}{row}  (n={counts[(name, 'ALL')]}, text changed in {counts[(name, 'changed')]})")


def test_recall_planted_benchmark_questions():
    start = time.perf_counter()
    table, counts, misses = _recall_table(PERTURBATIONS)
    elapsed = time.perf_counter() - start
    _print_table("recall of planted benchmark questions (caught / planted)", table, counts)
    print(f"{sum(counts[(n, 'ALL')] for n in PERTURBATIONS)} checks in {elapsed:.1f} s; misses: {misses[:10]}")
    # the perturbations are not vacuous: they change the texts that have something to change
    assert counts[("whitespace", "changed")] == counts[("combined", "changed")] == len(benchmark_questions())
    assert counts[("numbers", "changed")] >= 0.8 * len(benchmark_questions())
    assert counts[("latex", "changed")] >= 0.95 * counts[("latex", "ALL")]
    overall = sum(table[(n, "ALL")] * counts[(n, "ALL")] for n in PERTURBATIONS) / sum(
        counts[(n, "ALL")] for n in PERTURBATIONS)
    assert overall >= 0.99, (overall, misses[:20])
    for name in PERTURBATIONS:
        assert table[(name, "ALL")] >= 0.99, (name, table[(name, "ALL")], [m for m in misses if m[0] == name][:10])
        for bench in ["math500", "aime24", "amc23", "gsm8k_test", "humaneval"]:
            if (name, bench) in table:
                assert table[(name, bench)] >= 0.95, (name, bench, table[(name, bench)])


def test_recall_one_word_changed_is_measured():
    """Beyond light perturbation: one word replaced. 8-grams of a short item are all hit by
    one change, so short items are lost; long ones are kept (reported, with a floor)."""
    table, counts, misses = _recall_table({"one word": one_word_changed})
    _print_table("recall with one word (4+ letters) replaced", table, counts)
    assert table[("one word", "ALL")] >= 0.85
    assert table[("one word", "gsm8k_test")] >= 0.9 and table[("one word", "humaneval")] >= 0.95


def test_short_items_match_whole_and_template_siblings_do_not():
    idx = index()
    m = idx.match("Please help. Simplify $\\sqrt{242}$. Thanks!")  # a 3-token MATH-500 question
    assert m is not None and m.item_id == "test/prealgebra/1302.json" and "whole" in m.reason
    assert idx.match("Simplify $\\sqrt{243}$.") is None
    # MATH train sibling of MATH-500 test/number_theory/466.json: only the divisor differs
    assert idx.match("What is the remainder when $1 + 2 + 3 + 4 + \\dots + 9 + 10$ is divided by 8?") is None
    assert idx.match("What is the remainder when $1 + 2 + 3 + 4 + \\dots + 9 + 10$ is divided by 9?") is not None
    # GSM8K train sibling of GSM8K test item 603: same wording, other numbers. The n-grams let it
    # pass; the order-free check calls it a rewrite of 603 (a number-changed copy of a word
    # problem is contamination: tests/adversarial/test_contamination_rewrites.py)
    sibling = ("A train travels 270 miles in 3 hours. At the same rate, how many additional hours "
               "would it take to travel an additional 180 miles?")
    assert build_index(decision=DecisionRule(order_free_min_coverage=0.0)).match(sibling) is None
    m = idx.match(sibling)
    assert m is not None and m.item_id == "603" and "rewritten" in m.reason


def test_match_many_and_speed():
    idx = index()
    texts = [i.text for i in benchmark_questions()]
    start = time.perf_counter()
    out = idx.match_many(texts)
    per_item = (time.perf_counter() - start) / len(texts)
    assert all(m is not None for m in out)
    assert per_item < 2e-3, per_item  # ~0.1 ms on 2 cores: 22k questions in a few seconds


# --- false positives on the training pools ------------------------------------------------------

# Real overlaps: the AIME pool (deepscaler, AIME 1983-2023) holds AIME problems that MATH
# adopted into its test set, so MATH-500 contains them. Same problem: identical text up to
# formatting (the first six), or re-phrased (the last three).
REAL_OVERLAPS = {
    "test/intermediate_algebra/1365.json", "test/intermediate_algebra/582.json", "test/intermediate_algebra/90.json",
    "test/intermediate_algebra/2146.json", "test/intermediate_algebra/1411.json",
    "test/intermediate_algebra/1849.json",
    "test/intermediate_algebra/345.json",  # "\cdots" vs "\dots"
    "test/counting_and_probability/1003.json",  # AIME 2003 die problem, re-worded by MATH
    "test/intermediate_algebra/1063.json",  # AIME 2002: asks a+b where MATH asks z_2002
}


def test_train_pools_false_positives():
    questions = shipped_questions()
    idx = index()
    start = time.perf_counter()
    matches = idx.match_many(q.text for q in questions)
    elapsed = time.perf_counter() - start
    flagged = [(q, m) for q, m in zip(questions, matches) if m is not None]
    print(f"\n{len(questions)} pool questions checked in {elapsed:.1f} s; flagged {len(flagged)} "
          f"({len(flagged) / len(questions):.2%})")
    real = [(q, m) for q, m in flagged if m.item_id in REAL_OVERLAPS]
    other = [(q, m) for q, m in flagged if m.item_id not in REAL_OVERLAPS]
    for label, group in (("real overlap", real), ("not the same problem", other)):
        for q, m in sorted(group, key=lambda x: (-x[1].score, x[1].item_id)):
            print(f"  [{label}] {q.source} {q.question_id} -> {m.reason} | {q.text[:90]!r}")
    assert len(flagged) / len(questions) <= 0.01
    # The n-grams' spurious share stays well under the 1% budget. The rewrite check adds about
    # 0.55% (measured: 124 of 21.7k flagged in all, mostly GSM8K train word problems worded like
    # a test item, e.g. age puzzles; some are true siblings: the same story, other numbers).
    rewritten = [(q, m) for q, m in other if "rewritten" in m.reason]
    assert (len(other) - len(rewritten)) / len(questions) <= 0.002
    assert len(rewritten) / len(questions) <= 0.007
    assert {m.item_id for _q, m in real} == REAL_OVERLAPS
    # GSM8K train/test siblings differ in numbers: only the rewrite check flags them
    assert all("rewritten" in m.reason for q, m in flagged if q.source == "gsm8k")
    # Speed is bench/contamination_rewrites.py's to measure (about 1.8 ms of CPU a question), not a test's.


# --- generated answers ---------------------------------------------------------------------------

TRAIN_QUESTION = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                  "How many clips did Natalia sell altogether in April and May?")


def test_answer_reproducing_a_benchmark_solution_is_caught():
    idx = index()
    sols = [i for i in load_shipped()
            if i.kind == "solution" and len(tokenize(i.text)) >= idx.decision.min_solution_tokens]
    rng = random.Random(7)
    caught = Counter()
    misses = []
    for item in sols:
        answer = "Let me think about this carefully.\n" + perturb_whitespace(perturb_numbers(item.text, rng), rng) + \
                 "\nSo the final answer is 72."
        m = idx.match_answer(answer, TRAIN_QUESTION)
        ok = m is not None and (m.benchmark, m.item_id, m.kind) == (item.benchmark, item.item_id, "solution")
        caught[item.benchmark, ok] += 1
        if not ok:
            misses.append((item.benchmark, item.item_id, m and m.reason))
    print("\nplanted solutions caught:", dict(caught))
    assert len(misses) <= 0.01 * len(sols), misses[:10]


def test_answer_quoting_a_benchmark_question_is_caught_but_its_own_question_is_not():
    idx = index()
    items = benchmark_questions()
    # (questions under 8 tokens, e.g. "Simplify $\\sqrt{242}$.", are not looked for in answers)
    long_items = [i for i in items if len(tokenize(i.text)) >= idx.decision.n]
    caught = sum(
        idx.match_answer(f"This is like a problem I know: {i.text} There the answer was 12. Here, 48 + 24 = 72.",
                         TRAIN_QUESTION) is not None for i in long_items)
    assert caught >= 0.99 * len(long_items)
    assert idx.match_answer("First, simplify $\\sqrt{242}$. It is $11\\sqrt{2}$.", TRAIN_QUESTION) is None
    # restating its own question (even when that question is a benchmark item) is normal
    restated = [idx.match_answer(f"The question asks: {i.text}\nLet me work it out step by step. The answer is 7.",
                                 i.text) for i in items]
    assert sum(m is not None and m.kind == "question" for m in restated) == 0
    # the same answer checked against a different question is caught
    assert idx.match_answer(f"We know that {items[0].text}", TRAIN_QUESTION) is not None


def _calc_free(text: str) -> str:
    return re.sub(r"<<[^<>]*>>", "", text)


def test_real_answers_are_not_flagged():
    """Answers written for non-benchmark questions: GSM8K train rationales, MBPP reference code,
    and Qwen2.5-Math CoT on MATH test problems (95 of the 100 are not in MATH-500)."""
    idx = index()
    pairs = []
    with (DATA / "seeds" / "gsm8k_train.jsonl").open() as f:
        pairs += [("gsm8k train", r["question"], _calc_free(r["answer"])) for r in map(json.loads, f)]
    mbpp = json.loads((DATA / "seeds" / "mbpp_sanitized.json").read_text())
    pairs += [("mbpp", r["prompt"], r["code"]) for r in mbpp]
    math500 = {normalize(i.text) for i in benchmark_questions() if i.benchmark == "math500"}
    with (DATA / "labels" / "math_cot_responses_labelled.jsonl").open() as f:
        for r in map(json.loads, f):
            if normalize(r["question"]) not in math500:
                pairs += [("qwen2.5-math", r["question"], resp) for resp in r["response"]]
    start = time.perf_counter()
    flagged = [(src, q, idx.match_answer(a, q)) for src, q, a in pairs]
    elapsed = time.perf_counter() - start
    flagged = [(src, q, m) for src, q, m in flagged if m is not None]
    print(f"\n{len(pairs)} real answers checked in {elapsed:.1f} s, flagged {len(flagged)}: "
          f"{Counter(src for src, _q, _m in pairs)}")
    for src, q, m in flagged[:10]:
        print("  ", src, m.reason, "|", q[:80])
    assert len(flagged) <= 0.01 * len(pairs)


def test_model_solutions_to_gsm8k_test_flag_only_their_own_item():
    """GPT-3 solutions to GSM8K *test* questions (labels/gsm8k_model_solutions_labelled.jsonl):
    checked with their own question, an answer may only ever match that same item's reference
    solution (a correct solution can resemble it), never another benchmark item."""
    idx = index()
    test_ids = {normalize(i.text): i.item_id for i in benchmark_questions() if i.benchmark == "gsm8k_test"}
    own = other = total = 0
    with (DATA / "labels" / "gsm8k_model_solutions_labelled.jsonl").open() as f:
        for r in map(json.loads, f):
            for key in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
                total += 1
                m = idx.match_answer(_calc_free(r[key]["solution"]), r["question"])
                if m is not None:
                    if m.item_id == test_ids[normalize(r["question"])]:
                        own += 1
                    else:
                        other += 1
    print(f"\n{total} GSM8K test model solutions: {own} match their own item's solution, {other} another item")
    assert other == 0
    assert own <= 0.02 * total


def test_decision_rule_knobs():
    items = [BenchmarkItem("b", "1", "the quick brown fox jumps over the lazy dog near the river bank today")]
    strict = NgramIndex(items, DecisionRule(min_item_coverage=1.0, min_span=1000, min_query_coverage=2.0,
                                            order_free_min_coverage=0.0))
    loose = NgramIndex(items)
    text = "the quick brown fox jumps over the lazy dog near the river bank"  # 13 of 14 tokens
    assert strict.match(text) is None
    m = loose.match(text)
    assert m is not None and m.item_coverage == pytest.approx(6 / 7, abs=1e-3) and m.reason.startswith("b question 1")
    assert loose.candidates(text)[0].shared_ngrams == 6


def test_answer_rule_as_a_sample_filter():
    import polars as pl

    rule = AnswerContamination(index())
    janet = next(i.text for i in benchmark_questions() if i.benchmark == "gsm8k_test")
    bad = {"reasoning": f"I remember this one: {janet} She sells 9 eggs.", "answer": "18",
           "question_text": TRAIN_QUESTION}
    good = {"reasoning": "48 / 2 = 24 in May, 48 + 24 = 72.", "answer": "72", "question_text": TRAIN_QUESTION}
    r = rule.check(bad)
    assert not r.passed and r.reason.startswith("gsm8k_test question 1:") and r.score == 1.0
    assert rule.check(good).passed
    frame = rule.check_batch(pl.DataFrame([bad, good, {"reasoning": None, "answer": None, "question_text": None}]))
    assert frame["passed"].to_list() == [False, True, True]


def test_question_verdict_rows():
    idx = index()
    janet = next(i.text for i in benchmark_questions() if i.benchmark == "gsm8k_test")
    row = question_verdict(idx.match(janet), idx)
    assert (row["stage"], row["rule"], row["rule_version"], row["passed"], row["score"]) == \
        ("decontam", "decontam_ngram", 1, False, 1.0)
    assert row["details"]["benchmark"] == "gsm8k_test" and row["details"]["item_id"] == "1"
    assert row["details"]["benchmarks"] == idx.fingerprint and row["reason"].startswith("gsm8k_test question 1")
    clean = question_verdict(idx.match(TRAIN_QUESTION), idx)
    assert clean["passed"] and clean["reason"] is None and json.dumps(clean)
