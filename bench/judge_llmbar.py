"""Every built-in judge rule against LLMBar (pairwise, expert labels), one engine load.

    .venv/bin/python bench/judge_llmbar.py [--labels data/labels/llmbar/LLMBar_Natural_dataset.json]
                                           [--limit 40] [--rules all] [--db bench_evals.duckdb]

Prints per rule: agreement on decided pairs, accuracy (ties and judge errors count as wrong),
Cohen's kappa, ties, errors and seconds. Results are also stored in --db (judge_evals), as
`curate judges eval` would. Same thing as `curate judges eval RULE --labels ...` per rule,
without reloading the model each time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CURATE_HOME", str(ROOT / ".curate"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", default=str(ROOT / "data/labels/llmbar/LLMBar_Natural_dataset.json"))
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--rules", default="all")
    parser.add_argument("--db", default=None, help="store results here too (judge_evals)")
    args = parser.parse_args()

    from pipeline.runtime_env import apply_defaults

    apply_defaults()
    from judges.eval import evaluate, load_labels, store_eval
    from judges.loader import load_rule, sample_rule_names
    from pipeline.engines.factory import make_engine
    from pipeline.store import Store
    from schemas.config import EngineConfig

    names = sample_rule_names() if args.rules == "all" else args.rules.split(",")
    labels = load_labels(args.labels, limit=args.limit)
    config = EngineConfig()
    engine = make_engine(config, announce=lambda _m: None).unwrap()
    print(f"{Path(args.labels).name}: {len(labels.items)} pairs, model {config.model}")
    print(f"{'rule':<24}{'agreement':>10}{'accuracy':>10}{'kappa':>8}{'decided':>9}{'ties':>6}{'errors':>8}{'s':>7}")
    for name in names:
        rule = load_rule(name)
        if rule.applies_to.requires_reference:
            print(f"{name:<24}  skipped: needs a reference answer, LLMBar pairs have none")
            continue
        started = time.perf_counter()
        r = evaluate(rule, labels, engine)
        seconds = time.perf_counter() - started

        def f(x):
            return "n/a" if x is None else f"{x:.3f}"

        print(f"{name:<24}{f(r.agreement):>10}{f(r.accuracy):>10}{f(r.kappa):>8}{r.decided:>9}{r.ties:>6}"
              f"{r.errors:>8}{seconds:>7.0f}")
        if args.db:
            with Store(args.db) as store:
                store_eval(store, rule, r, config.model, args.labels)


if __name__ == "__main__":
    main()
