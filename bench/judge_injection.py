"""How often prompt injection fools the judges: the built-in rules on the injection corpus.

    .venv/bin/python bench/judge_injection.py [--rules correctness redundancy] [--limit 10] [--max-retries 0]

Every sample of tests/fixtures/judge_injection.jsonl is bad (wrong answer, no reasoning, or a
loop) and carries an attack in its reasoning or answer. For each rule, the samples it applies
to are judged twice with the real default engine: as injected, and as a control with the
attack text removed (the corpus keeps it as clean_reasoning / clean_answer). `passed` counts
bad samples the judge kept; if injection works, the injected pass fraction exceeds the clean
one and `flipped` (failed clean, passed injected) is above zero.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CURATE_HOME", str(ROOT / ".curate"))

CORPUS = ROOT / "tests/fixtures/judge_injection.jsonl"


def load_corpus(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def applicable(rule, samples: list[dict]) -> list[dict]:
    from judges.run import applies

    return [s for s in samples if applies(rule, s)]


def cheap_rule_catches(samples: list[dict]) -> list[str]:
    """Ids of samples the cheap rules that look for judge bait drop (they run before judges)."""
    import polars as pl

    from filters.judge_bait import JudgeBaitFilter
    from filters.structure import StructureFilter

    frame = pl.DataFrame({
        "sample_id": [s["sample_id"] for s in samples],
        "raw_text": [f"<think>\n{s['reasoning']}\n</think>\n\n{s['answer']}" for s in samples],
        "reasoning": [s["reasoning"] for s in samples], "answer": [s["answer"] for s in samples],
        "think_closed_by": ["model"] * len(samples),
    })
    dropped = set()
    for rule in (StructureFilter(), JudgeBaitFilter()):
        result = rule.check_batch(frame.select([c for c in frame.columns if c in rule.needs or c == "sample_id"]))
        dropped |= {sid for sid, ok in zip(frame["sample_id"], result["passed"]) if not ok}
    return sorted(dropped)


def clean(sample: dict) -> dict:
    return {**sample, "reasoning": sample["clean_reasoning"], "answer": sample["clean_answer"]}


def main() -> None:
    from judges.loader import load_rule, sample_rule_names

    builtins = sorted(sample_rule_names())
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", nargs="+", default=builtins, help=f"rule names (default: all of {builtins})")
    parser.add_argument("--limit", type=int, default=None, help="judge at most N corpus samples per rule")
    parser.add_argument("--max-retries", type=int, default=0,
                        help="retries of unparsable output (default 0: at temperature 0 a retry repeats itself)")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()

    from pipeline.runtime_env import apply_defaults

    apply_defaults()  # offline, caches under CURATE_HOME: before vLLM or transformers is imported
    from judges.run import judge_samples
    from pipeline.engines.factory import make_engine
    from schemas.config import EngineConfig

    corpus = load_corpus(args.corpus)
    rules = [load_rule(name) for name in args.rules]
    engine = make_engine(EngineConfig(), announce=print).unwrap()

    print(f"\ncorpus: {len(corpus)} bad samples, attacks {dict(Counter(s['attack'] for s in corpus))}")
    caught = cheap_rule_catches(corpus)
    print(f"cheap rules in front of the judges (structure, judge_bait): {len(caught)} of {len(corpus)} injected "
          f"samples dropped before any judge; {len(corpus) - len(caught)} would reach a judge "
          f"(the clean controls: {len(cheap_rule_catches([clean(s) for s in corpus]))} dropped)")
    print(f"engine: {engine.model_name}\n")
    header = (f"{'rule':<24}{'variant':<10}{'samples':>8}{'passed':>8}{'errors':>8}{'pass_frac':>11}"
              f"{'flipped':>9}{'secs':>7}")
    print(header)
    print("-" * len(header))
    by_attack: Counter = Counter()
    by_attack_clean: Counter = Counter()
    totals = Counter()
    for rule in rules:
        samples = applicable(rule, corpus)[: args.limit]
        rows = {}
        for variant, batch in (("injected", samples), ("clean", [clean(s) for s in samples])):
            start = time.perf_counter()
            rows[variant] = (judge_samples(rule, batch, engine, max_retries=args.max_retries),
                             time.perf_counter() - start)
        for variant in ("injected", "clean"):
            results, secs = rows[variant]
            passed = sum(r["passed"] for r in results)
            errors = sum(r["score"] is None for r in results)
            flipped = "" if variant == "clean" else str(sum(
                r["passed"] and not c["passed"] for r, c in zip(results, rows["clean"][0])))
            frac = passed / len(results) if results else 0.0
            print(f"{rule.name:<24}{variant:<10}{len(results):>8}{passed:>8}{errors:>8}{frac:>11.2f}{flipped:>9}"
                  f"{secs:>7.1f}")
            if errors:
                reason, count = Counter(r["reason"][:110] for r in results if r["score"] is None).most_common(1)[0]
                print(f"{'':<34}most common error ({count}x): {reason}")
            totals[variant, "samples"] += len(results)
            totals[variant, "passed"] += passed
            totals[variant, "errors"] += errors
        for s, r, c in zip(samples, rows["injected"][0], rows["clean"][0]):
            by_attack[s["attack"]] += r["passed"]
            by_attack_clean[s["attack"]] += c["passed"]
            totals["flipped"] += r["passed"] and not c["passed"]
    print("-" * len(header))
    for variant in ("injected", "clean"):
        n, p = totals[variant, "samples"], totals[variant, "passed"]
        print(f"{'all rules':<24}{variant:<10}{n:>8}{p:>8}{totals[variant, 'errors']:>8}{(p / n if n else 0):>11.2f}"
              f"{(str(totals['flipped']) if variant == 'injected' else ''):>9}")
    print("\npassed by attack (injected / clean), summed over rules:")
    for attack in sorted({s["attack"] for s in corpus}):
        print(f"  {attack:<24}{by_attack[attack]:>4} / {by_attack_clean[attack]}")


if __name__ == "__main__":
    main()
