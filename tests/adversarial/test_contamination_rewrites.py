"""Rewritten benchmark questions (tests/adversarial/contamination_rewrites.py) are caught by the
decontamination index (n-grams + the order-free check, filters/screening/decontam_rewrites.py),
and questions that are not benchmark items are not, on a fixed sample: the first 200 items of
each benchmark in the "report" half (rewrite seed 1; the threshold was chosen on the other
half), and the first 1,000 questions of GSM8K train and MATH train plus the 95 MATH test
questions outside MATH-500. Full sets: bench/contamination_rewrites.py."""

from __future__ import annotations

import random
import time
from functools import lru_cache

import pytest

from bench.contamination_rewrites import benchmark_questions, false_positives, negatives, recall
from filters.screening.decontam import DecisionRule
from pipeline.benchmarks import build_index
from tests.adversarial.contamination_rewrites import KINDS, rewrite

# Floors, not goals: the goal is 99% for every kind. On this sample numbers (word problems under
# 20 tokens keep their numbers check), synonyms, formatting (a/b fractions in short formulas)
# and mixed are not there yet: 95.3%, 98.0%, 98.8%, 94.5% (bench/contamination_rewrites.py: full sets).
RECALL_FLOOR = {"numbers": 0.95, "synonyms": 0.975, "formatting": 0.985, "mixed": 0.94}
FP_CEILING = 0.012  # one of the 95 MATH test questions is 1.05%


@lru_cache(maxsize=2)
def index(order_free: bool = True):
    return build_index(decision=DecisionRule() if order_free else DecisionRule(order_free_min_coverage=0.0))


def test_rewrites_are_deterministic_and_change_the_text():
    text = ("Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for "
            "her friends every day with four. How much in dollars does she make every day?")
    for kind in KINDS:
        a, b = rewrite(kind, text, random.Random(5)), rewrite(kind, text, random.Random(5))
        assert a == b and a != text, kind
    assert "16" not in rewrite("numbers", text, random.Random(1))
    assert rewrite("numbers", "Simplify $\\sqrt{242}$.", random.Random(1)) == "Simplify $\\sqrt{242}$."  # formulas kept


def test_recall_per_rewrite_kind():
    items = benchmark_questions(part="report", per_benchmark=200)
    start = time.perf_counter()
    after = recall(index(True), items, seed=1)
    before = recall(index(False), items, seed=1)
    print(f"\nrecall on {len(items)} items x {len(KINDS)} kinds in {time.perf_counter() - start:.1f} s")
    for kind in KINDS:
        print(f"  {kind:11} n-grams {before[(kind, 'all')][0] / before[(kind, 'all')][1]:6.1%}  "
              f"with order-free {after[(kind, 'all')][0] / after[(kind, 'all')][1]:6.1%}  (of {after[(kind, 'all')][1]})")
    for kind in KINDS:
        caught, tried = after[(kind, "all")]
        assert tried >= 50, kind
        assert caught / tried >= RECALL_FLOOR.get(kind, 0.99), (kind, caught, tried)
        assert caught >= before[(kind, "all")][0], kind  # the check only adds matches
    # the weakness it closes: new numbers in a GSM8K word problem break every n-gram
    assert before[("numbers", "gsm8k_test")][0] / before[("numbers", "gsm8k_test")][1] < 0.1


def test_false_positives_on_questions_that_are_not_benchmark_items():
    sets = negatives(limit=1000)
    start = time.perf_counter()
    fps = false_positives(index(True), sets)
    print(f"\nnegatives checked in {time.perf_counter() - start:.1f} s")
    for name, (flagged, checked, examples) in fps.items():
        print(f"  {name}: {flagged} / {checked}", [m.reason for _t, m in examples[:3]])
        assert flagged / checked <= FP_CEILING, (name, flagged, checked)


def test_rewritten_match_says_why():
    idx = index(True)
    m = idx.match("A jet covers 1500 miles in 4 hours. At that rate, how many additional hours would it need to "
                  "travel an additional 2500 miles?")  # GSM8K test 603 with new numbers and other words
    assert m is not None and m.benchmark == "gsm8k_test" and "rewritten" in m.reason and "numbers masked" in m.reason
    # a formula question with other numbers is another problem, as for the n-grams
    assert idx.match("What is the remainder when $1 + 2 + 3 + 4 + \\dots + 9 + 10$ is divided by 8?") is None
    assert idx.match_answer("A jet covers 1500 miles in 4 hours. At that rate, how many additional hours would "
                            "it need to travel an additional 2500 miles?", "Q") is None  # answers: n-grams only


@pytest.mark.parametrize("coverage", [0.0, 0.5])
def test_the_check_is_part_of_the_fingerprint(coverage):
    assert (build_index(decision=DecisionRule(order_free_min_coverage=coverage)).fingerprint
            == index(bool(coverage)).fingerprint)
    assert index(True).fingerprint != index(False).fingerprint
