"""A shipped model on the embedded engine: GSM8K accuracy and output tokens/s, side by side.

    .venv/bin/python bench/model_gsm8k.py [--model qwen2.5-coder-1.5b-instruct] [--dtype auto]
                                          [--prompts 32] [--max-tokens 512]

The first N GSM8K train questions (data/seeds), "think step by step, final answer in \\boxed{}",
T=0.7, one LLM.chat call: the measurement of ../shared/notes/stack.md, so models (and dtypes)
compare on the same prompts. Prints load time, wall time, output tokens/s, the share that stopped
naturally, Math-Verify accuracy, and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CURATE_HOME", str(ROOT / ".curate"))

from pipeline.runtime_env import apply_defaults  # noqa: E402

apply_defaults()

PROMPT = "{question}\n\nThink step by step, then put the final answer in \\boxed{{}}."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=512)
    args = parser.parse_args()

    from filters.answer_match import match_math
    from pipeline.engines.factory import make_engine
    from pipeline.engines.base import ChatRequest, Sampling
    from pipeline.engines.vllm_local import resolve_dtype
    from schemas.config import EngineConfig

    rows = [json.loads(line) for line in (ROOT / "data/seeds/gsm8k_train.jsonl").open()][: args.prompts]
    requests = [ChatRequest([{"role": "user", "content": PROMPT.format(question=r["question"])}],
                            Sampling(n=1, temperature=0.7, top_p=0.95, max_tokens=args.max_tokens, seed=i))
                for i, r in enumerate(rows)]
    started = time.perf_counter()
    engine = make_engine(EngineConfig(model=args.model, dtype=args.dtype), announce=lambda _m: None).unwrap()
    loaded = time.perf_counter()
    results = engine.chat(requests)
    wall = time.perf_counter() - loaded
    tokens = sum(r.completions[0].completion_tokens for r in results)
    natural = sum(r.completions[0].finish_reason == "stop" for r in results)
    correct = sum(match_math(r.completions[0].text, row["answer"].split("####")[-1].strip()).passed
                  for r, row in zip(results, rows))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"{args.model} ({resolve_dtype(args.dtype)}): load {loaded - started:.0f} s; {len(rows)} prompts x <= {args.max_tokens} "
          f"tokens in {wall:.0f} s: {tokens} output tokens = {tokens / wall:.1f} tok/s; stopped naturally "
          f"{natural}/{len(rows)}; correct {correct}/{len(rows)} (Math-Verify); peak RSS {rss:.1f} GB")


if __name__ == "__main__":
    main()
