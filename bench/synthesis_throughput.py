"""Synthesis throughput: the pipeline's synthesize stage vs raw vLLM `LLM.chat`, same engine,
same questions, same run (ratios within one run; these machines are noisy).

    .venv/bin/python bench/synthesis_throughput.py [--questions 32] [--n 2]

Prints output tokens/s for: raw LLM.chat (one call, every prompt), the pipeline in native
think mode (one engine pass, DuckDB writes), and in forced mode (two passes: reasoning, then
answer after a forced </think>).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("CURATE_HOME", str(Path(__file__).resolve().parent.parent / ".curate"))

from pipeline.runtime_env import apply_defaults  # noqa: E402

apply_defaults()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--n", type=int, default=2)
    args = parser.parse_args()

    import polars as pl

    from pipeline.config_loading import load_run_config
    from pipeline.engines.factory import make_engine
    from pipeline.stages.ingest import ingest, select_questions
    from pipeline.stages.synthesize import gen_config_hash, group_samples, native_request, plan_samples, synthesize
    from pipeline.store import Store

    config = load_run_config(limit=args.questions)
    engine = make_engine(config.engine).unwrap()
    tmp = Path(tempfile.mkdtemp())
    with Store(tmp / "bench.duckdb") as store:
        run_id = store.start_run({}, "bench")
        report = ingest(store, config, run_id)
        qids = select_questions(report.pool, config.limit, config.selection_seed)
        questions = store.frame("SELECT question_id, text, domain, answer_type FROM questions "
                                "WHERE question_id IN (SELECT id FROM q)",
                                q=pl.DataFrame({"id": qids}))
    syn = config.synthesis.model_copy(update={"n": args.n})
    budget = syn.reasoning_max_tokens + syn.answer_max_tokens

    # Raw engine: exactly the requests the pipeline sends in native mode (same prompts, same
    # per-sample seeds, so the same outputs), in one LLM.chat call.
    native = syn.model_copy(update={"think_mode": "native"})
    groups = group_samples(plan_samples(questions, native, gen_config_hash(native, engine.model_name)))
    requests = [native_request(g, native) for g in groups]
    t = time.perf_counter()
    outs = engine._llm.chat([r.messages for r in requests], [engine._params(r) for r in requests], use_tqdm=False)
    raw_s = time.perf_counter() - t
    raw_tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)

    results = {}
    for mode in ("native", "forced"):
        cfg = syn.model_copy(update={"think_mode": mode, "batch_questions": len(qids)})
        with Store(tmp / f"{mode}.duckdb") as store:
            run_id = store.start_run({}, "bench")
            ingest(store, config, run_id)
            t = time.perf_counter()
            synthesize(store, engine, cfg, run_id, qids)
            seconds = time.perf_counter() - t
            tokens = store.scalar("SELECT sum(completion_tokens) FROM samples")
        results[mode] = (tokens, seconds)

    print(f"\nsynthesis throughput, {len(qids)} questions x n={args.n}, SmolLM2-135M on vLLM CPU, budget {budget} tokens")
    print(f"  raw LLM.chat           {raw_tokens:>7} tokens {raw_s:7.1f} s {raw_tokens / raw_s:7.1f} tok/s")
    for mode, (tokens, seconds) in results.items():
        rate = tokens / seconds
        print(f"  pipeline ({mode:<6})     {tokens:>7} tokens {seconds:7.1f} s {rate:7.1f} tok/s"
              f"  = {rate / (raw_tokens / raw_s):.2f} x raw")


if __name__ == "__main__":
    main()
