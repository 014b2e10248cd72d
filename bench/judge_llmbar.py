"""Built-in judge rules against LLMBar (pairwise, expert labels), in both judge modes, one engine load.

    .venv/bin/python bench/judge_llmbar.py [--sets natural,adversarial] [--modes pairwise,pointwise]
                                           [--rules all] [--limit N] [--db bench_evals.duckdb]

Sets: natural = LLMBar_Natural (100 pairs); adversarial = the four LLMBar_Adversarial subsets
(GPTInst, GPTOut, Manual, Neighbor: 319 pairs), reported per subset too. Modes: pairwise (both
outputs in one prompt, asked twice with the order swapped; a disagreement is a tie),
pairwise_letter (the same two calls, one constrained letter each, decided by the probability
averaged over both orders) and pointwise (each output scored alone; equal scores are a tie). Prints per rule, mode and set:
accuracy (ties and errors count as wrong), agreement on decided pairs, ties, Cohen's kappa,
position consistency (pairwise) and seconds; every result is also stored in --db (judge_evals),
as `curate judges eval` would.
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

LLMBAR = ROOT / "data/labels/llmbar"
SETS = {"natural": ["LLMBar_Natural_dataset.json"],
        "adversarial": [f"LLMBar_Adversarial_{s}_dataset.json" for s in ("GPTInst", "GPTOut", "Manual", "Neighbor")]}


def fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", default="natural,adversarial")
    parser.add_argument("--modes", default="pairwise,pointwise")
    parser.add_argument("--rules", default="all")
    parser.add_argument("--limit", type=int, default=None, help="first N pairs of each file")
    parser.add_argument("--model", default=None, help="judge model (default: the engine default)")
    parser.add_argument("--db", default=str(ROOT / ".curate" / "bench" / "llmbar_evals.duckdb"))
    args = parser.parse_args()

    from pipeline.runtime_env import apply_defaults

    apply_defaults()
    from judges.eval import LabelSet, evaluate, load_labels
    from judges.loader import load_rule, sample_rule_names
    from pipeline.engines.factory import make_engine
    from pipeline.judge_eval_store import store_eval
    from pipeline.store import Store
    from schemas.config import EngineConfig

    names = sample_rule_names() if args.rules == "all" else args.rules.split(",")
    config = EngineConfig(model=args.model) if args.model else EngineConfig()
    engine = make_engine(config, announce=lambda _m: None).unwrap()
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    print(f"judge model {config.model}; results also in {args.db}")
    print(f"{'rule':<24}{'mode':<16}{'set':<26}{'n':>4}{'acc':>7}{'agree':>7}{'ties':>6}{'err':>5}{'kappa':>7}"
          f"{'posc':>7}{'s':>6}", flush=True)
    for set_name in args.sets.split(","):
        parts = [load_labels(LLMBAR / f, limit=args.limit) for f in SETS[set_name]]
        labels = LabelSet("pairwise", [i for p in parts for i in p.items], f"{LLMBAR}/{set_name}")
        for name in names:
            rule = load_rule(name)
            if rule.applies_to.requires_reference:
                print(f"{name:<24}skipped: needs a reference answer, LLMBar pairs have none")
                continue
            for mode in args.modes.split(","):
                started = time.perf_counter()
                r = evaluate(rule, labels, engine, mode=mode)
                seconds = time.perf_counter() - started
                rows = [(set_name, r.n_items, r.accuracy, r.agreement, r.ties, r.errors, r.kappa)]
                if len(parts) > 1:
                    rows += [(f"  {s.removeprefix('LLMBar_Adversarial_').removesuffix('_dataset')}", t["n"],
                              t["accuracy"], t["agreement"], t["ties"], t["errors"], t["kappa"])
                             for s, t in r.details["subsets"].items()]
                for i, (label, n, acc, agree, ties, errors, kappa) in enumerate(rows):
                    tail = f"{fmt(r.position_consistency) if mode.startswith('pairwise') else '-':>7}{seconds:>6.0f}" if i == 0 else ""
                    print(f"{name:<24}{mode:<16}{label:<26}{n:>4}{fmt(acc):>7}{fmt(agree):>7}{ties:>6}{errors:>5}"
                          f"{fmt(kappa):>7}{tail}", flush=True)
                with Store(args.db) as store:
                    store_eval(store, rule, r, config.model, labels.source)


if __name__ == "__main__":
    main()
