"""Judge throughput with and without vLLM prefix caching, same samples, same rules, one run.

    .venv/bin/python bench/judge_prefix_cache.py [--samples 48] [--rules all] [--rounds 2]

Samples are real CoT responses (data/labels/math_cot_responses_labelled.jsonl: MATH questions
with a model's reasoning and answer). Each rule's system message (the rubric) is identical for
every sample, so with prefix caching its KV blocks are computed once per rule. Each mode runs
in its own process (a fresh engine, same settings otherwise), the modes alternate for --rounds
rounds, and the script prints samples/s and prompt tokens/s per mode and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CURATE_HOME", str(ROOT / ".curate"))


def load_samples(n: int) -> list[dict]:
    samples = []
    with (ROOT / "data" / "labels" / "math_cot_responses_labelled.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            text = row["code"][0]
            # Last paragraph as the answer; reasoning cut to stay inside the 4,096-token context.
            body, _, last = text.strip().rpartition("\n\n")
            reasoning, answer = body[:4000], last[:600]
            samples.append({"sample_id": f"m{row['idx']}", "question_text": row["question"], "reasoning": reasoning,
                            "answer": str(answer), "reference_answer": row["answer"], "requested_format": "prose",
                            "domain": "math"})
            if len(samples) == n:
                break
    return samples


def worker(prefix_caching: bool, n: int, rules: list[str]) -> dict:
    """Load the engine once, warm it up on other samples, then time every rule on the samples."""
    from pipeline.runtime_env import apply_defaults

    apply_defaults()
    from judges.loader import load_rule
    from judges.run import applies, judge_samples
    from pipeline.engines.factory import make_engine
    from schemas.config import EngineConfig

    engine = make_engine(EngineConfig(vllm_args={"enable_prefix_caching": prefix_caching}),
                         announce=lambda _m: None).unwrap()
    actual = engine._llm.llm_engine.vllm_config.cache_config.enable_prefix_caching
    all_samples = load_samples(n + 4)
    warm, samples = all_samples[n:], all_samples[:n]
    loaded = [load_rule(r) for r in rules]
    judge_samples(loaded[0], warm, engine, max_retries=0)  # compile paths, allocate; not timed
    judged = prompt_tokens = completion_tokens = 0
    started = time.perf_counter()
    for rule in loaded:
        batch = [s for s in samples if applies(rule, s)]
        for r in judge_samples(rule, batch, engine, max_retries=0):
            d = json.loads(r["details"])
            prompt_tokens += d["prompt_tokens"]
            completion_tokens += d["completion_tokens"]
        judged += len(batch)
    seconds = time.perf_counter() - started
    return {"prefix_caching": actual, "judged": judged, "seconds": seconds,
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--rules", default="all", help="comma-separated rule names, or all built-ins")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rules == "all":
        from judges.loader import sample_rule_names

        rules = sample_rule_names()
    else:
        rules = args.rules.split(",")
    if args.worker:
        print(json.dumps(worker(args.worker == "on", args.samples, rules)))
        return

    print(f"judge throughput: {args.samples} MATH CoT samples x rules {rules}, {args.rounds} round(s) per mode")
    results: dict[str, list[dict]] = {"off": [], "on": []}
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            proc = subprocess.run([sys.executable, __file__, "--worker", mode, "--samples", str(args.samples),
                                   "--rules", ",".join(rules)], capture_output=True, text=True, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results[mode].append(r)
            print(f"  prefix caching {mode:>3} (engine says {r['prefix_caching']}): {r['judged']} verdicts in "
                  f"{r['seconds']:.1f} s = {r['judged'] / r['seconds']:.2f} verdicts/s, "
                  f"{r['prompt_tokens'] / r['seconds']:.0f} prompt tok/s, {r['completion_tokens']} completion tokens")
    best = {m: max(x["judged"] / x["seconds"] for x in rs) for m, rs in results.items()}
    print(f"best verdicts/s: off {best['off']:.2f}, on {best['on']:.2f}; ratio on/off = {best['on'] / best['off']:.2f}x")


if __name__ == "__main__":
    main()
