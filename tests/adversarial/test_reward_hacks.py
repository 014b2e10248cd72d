"""Wrong code never passes: every reward-hacking program in the corpus (exit tricks, comparison
overrides, patched builtins and harness, frames and gc, forged output, reading the tests or the
reference from disk, HumanEval helpers redefined) is reported failed by the real sandbox, and
the MBPP + HumanEval reference solutions still pass (slow test)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from filters.text.code_extract import build_test_program, humaneval_tests, with_prompt_imports
from pipeline.sandbox import isolation_report, run_many, run_tests
from pipeline.sandbox.child import decode, encode
from tests.conftest import DATA

CORPUS = [json.loads(line) for line in (Path(__file__).parent / "corpora" / "reward_hacks.jsonl").open()]


def test_the_corpus_is_big_and_says_why():
    assert len(CORPUS) >= 30
    assert all(c["why"] and c["program"] and c["tests"] for c in CORPUS)
    assert len({c["why"] for c in CORPUS}) == len(CORPUS)
    assert sum("check(" in c["tests"][-1] for c in CORPUS) >= 4  # HumanEval-style check(candidate) too


def test_every_reward_hack_fails():
    results = run_many([(c["program"], build_test_program(c["tests"])) for c in CORPUS], workers=2, timeout_s=3)
    passed = [c["why"] for c, r in zip(CORPUS, results) if r.passed]
    assert not passed, passed
    assert all(r.status in ("failed", "timeout", "killed", "memory") for r in results), results


def test_reading_the_pool_needs_the_hidden_files():
    # The "reference from disk" attack fails because the pool is not visible in the sandbox,
    # not by luck: the same program finds the file when the mount namespace is not there.
    if not isolation_report()["host_files_hidden"]:
        pytest.skip("no mount namespace here: the program can read the host's files")
    res = run_tests("import os, sys\nroot = os.path.dirname(os.path.dirname(os.path.dirname(sys.executable)))\n"
                    "def visible():\n    return os.path.exists(root), os.listdir('/tmp'), os.listdir('/dev'),"
                    " os.path.basename(os.getcwd())\n",
                    "project, tmp, dev, work = visible()\n"
                    "assert not project and tmp == [work]  # /tmp holds the job's own folder only\n"
                    "assert set(dev) == {'null', 'zero', 'full', 'random', 'urandom', 'stdin', 'stdout', 'stderr', 'fd'}\n")
    assert res.passed, res


# ---------------------------------------------------------------- honest programs keep working

@pytest.mark.parametrize("program,tests", [
    # an argument changed in place is seen by the tests
    ("def sort_in_place(xs):\n    xs.sort()\n", "a = [3, 1, 2]\nsort_in_place(a)\nassert a == [1, 2, 3]"),
    # generators, dict views, deques, Counters, Fractions, namedtuples and IntEnums
    ("def gen(n):\n    return (i * i for i in range(n))\n", "assert list(gen(3)) == [0, 1, 4]"),
    ("def keys(d):\n    return d.keys()\n", "assert keys({'a': 1}) == {'a'}"),
    ("import collections\ndef dq():\n    return collections.deque([1, 2])\n",
     "import collections\nassert dq() == collections.deque([1, 2])"),
    ("from collections import Counter\ndef cnt(s):\n    return Counter(s)\n", "assert cnt('aab') == {'a': 2, 'b': 1}"),
    ("from fractions import Fraction\ndef half():\n    return Fraction(1, 2)\n", "assert half() == 0.5"),
    ("from collections import namedtuple\nP = namedtuple('P', 'x y')\ndef p():\n    return P(1, 2)\n",
     "assert p() == (1, 2)"),
    ("import enum\nclass C(enum.IntEnum):\n    A = 3\ndef c():\n    return C.A\n", "assert c() == 3"),
    # the program's own classes, built and passed back by the tests (MBPP 601's Pair)
    ("class Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n"
     "def longest(ps):\n    return max(p.b - p.a for p in ps)\n",
     "assert longest([Pair(1, 5), Pair(2, 3)]) == 4\nassert Pair(1, 2).a == 1"),
    # closures and exceptions the tests expect
    ("def adder(n):\n    return lambda x: x + n\n", "assert adder(2)(3) == 5"),
    ("def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n",
     "try:\n    f(-1)\n    raise AssertionError('no error')\nexcept ValueError as e:\n    assert str(e) == 'negative'"),
    # a module the program imported is the tests' own copy; a constant comes as its value
    ("import math\nLIMIT = 10\ndef area(r):\n    return math.pi * r * r\n",
     "assert math.isclose(area(1), 3.14159, rel_tol=1e-3) and LIMIT == 10"),
])
def test_honest_programs_pass(program, tests):
    res = run_tests(program, tests)
    assert res.passed, res


def test_wire_format_is_strict():
    value = [1, 2.5, "s", b"b", None, True, (1, 2), {"k": {1, 2}}, frozenset({3}), range(3), 10 ** 60, 1j]
    assert decode(encode(value)) == value
    assert type(decode(encode(True))) is bool and type(decode(encode(1))) is int
    for bad in (("X", 1), ("L",) * 1, (1, 2), compile("1", "x", "eval"), ["L"]):
        if bad == ("L",):
            assert decode(bad) == []
            continue
        with pytest.raises(ValueError):
            decode(bad)
    with pytest.raises(TypeError):
        encode(object())  # without a handle maker, only data crosses


@pytest.mark.slow
def test_every_reference_solution_still_passes():
    mbpp = json.loads((DATA / "seeds" / "mbpp_sanitized.json").read_text())
    with gzip.open(DATA / "benchmarks" / "humaneval.jsonl.gz", "rt") as f:
        humaneval = [json.loads(line) for line in f]
    jobs = [(x["code"], build_test_program(x["test_list"], x["test_imports"])) for x in mbpp]
    jobs += [(with_prompt_imports(h["prompt"] + h["canonical_solution"], h["prompt"]),
              build_test_program(humaneval_tests(h["test"], h["entry_point"], h["prompt"]))) for h in humaneval]
    results = run_many(jobs, workers=2, timeout_s=30)  # MBPP 123 alone takes 6 s of CPU
    failed = [(i, r.detail) for i, r in enumerate(results) if not r.passed]
    assert len(jobs) == 591 and not failed, failed
