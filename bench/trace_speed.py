"""Speed of tracing one bad case over many stored samples.

    .venv/bin/python bench/trace_speed.py                      # 10^5 (all methods), 10^6 (signature + BM25)
    .venv/bin/python bench/trace_speed.py --sizes 20000 --real-embed 500

Each size runs in its own process (peak RSS is per process) on a fresh DuckDB file. Rows are
synthetic but made of real text: GSM8K train questions and solutions and MBPP tasks, reused with
their numbers shifted per copy (N/2 questions, two samples each). Verdicts are synthetic too: the
ten cheap rules per sample, 3% failing each with a real reason text (the shapes the signature
query reads). Embeddings: --real-embed samples are embedded with MiniLM to measure throughput; the
rest of the vectors are those real vectors plus noise, renormalized (the kNN search costs the
same; embedding every sample is extrapolated from the measured rate and printed as such).
Timed: the BM25 index build, the first trace (cold: indexes built or loaded) and warm traces
(median of 3), per method and whole; peak RSS from getrusage.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RULES = {  # rule -> a failure reason as the rule writes it
    "completeness": "reasoning of 180 chars is too short for a level-0.6 question (needs 440)",
    "format_compliance": "asked for boxed, wrote prose", "judge_bait": "addresses the grader",
    "language": "response language zh differs from the question's en", "length": "answer too short: 0 < 1 chars",
    "redundancy": "restates the question 3 times", "repetition": "duplicate lines 0.91 > 0.3",
    "self_identity": "self-identification: 'as an ai'", "structure": "reasoning never closed with </think>",
    "truncation": "answer cut at max_tokens (finish_reason=length)",
}
FAIL_RATE = 0.03


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def base_items() -> list[tuple[str, str, str]]:
    from tests.misalignment.canaries import gsm8k, mbpp

    items = [(q, "\n".join(steps), f"The answer is $\\boxed{{{final}}}$.") for q, steps, final in gsm8k(7473)]
    items += [(t["prompt"], f"The task: {t['prompt']} I write the function and check it.",
               f"```python\n{t['code']}\n```") for t in mbpp(427)]
    return items


def shift(text: str, v: int) -> str:
    return text if v == 0 else re.sub(r"\d+", lambda m: str(int(m.group()) + v), text)


def batch(items, start: int, count: int, rng: random.Random):
    import numpy as np
    import polars as pl

    from pipeline.store import now
    from schemas import rows

    created, questions, samples = now(), [], []
    for i in range(start, start + count, 2):
        q, reasoning, answer = items[(i // 2) % len(items)]
        v = (i // 2) // len(items)
        qid = f"q{i // 2:08d}"
        questions.append({"question_id": qid, "source": "bench", "domain": "code" if "```" in answer else "math",
                          "text": shift(q, v), "reference_answer": None, "answer_type": "numeric",
                          "pool_path": "bench", "pool_line": i // 2 + 1, "first_run_id": "bench"})
        for j in range(2):
            r, a = shift(reasoning, v), shift(answer, v)
            if j:
                r = "Let me work through it.\n" + r
            samples.append({"sample_id": f"s{i + j:09d}", "question_id": qid, "run_id": "bench", "sample_index": j,
                            "gen_config_hash": "g", "model": "bench", "requested_format": "boxed",
                            "prompt_hash": "p", "messages": "[]", "raw_text": f"<think>\n{r}\n</think>\n\n{a}",
                            "reasoning": r, "answer": a, "think_closed_by": "model", "finish_reason": "stop",
                            "prompt_tokens": 50, "completion_tokens": 200, "sampling_params": "{}",
                            "created_at": created})
    ids = [s["sample_id"] for s in samples]
    n, names = len(ids), list(RULES)
    failed = np.random.default_rng(start).random((n, len(names))) < FAIL_RATE
    verdicts = pl.DataFrame({
        "sample_id": np.repeat(ids, len(names)), "stage": "filter", "rule": np.tile(names, n), "rule_version": 1,
        "passed": ~failed.ravel(), "score": 1.0,
        "reason": pl.Series(np.tile([RULES[r] for r in names], n)).zip_with(
            pl.Series(failed.ravel()), pl.Series([None] * (n * len(names)), dtype=pl.String)),
        "run_id": "bench", "created_at": created, "config_hash": ""},
        schema_overrides={k: v for k, v in rows.VERDICT.items() if k not in ("details", "prompt_tokens",
                                                                              "completion_tokens")})
    return (pl.DataFrame(questions, schema_overrides={"reference_answer": pl.String}),
            pl.DataFrame(samples, schema=rows.SAMPLE, strict=False), verdicts)


def the_case():
    """A looping output on a reworded GSM8K question (as in tests/misalignment/canaries.py)."""
    from schemas.bad_case import BadCase
    from tests.misalignment.canaries import gsm8k

    q, steps, final = gsm8k(1, skip=5)[0]
    loop = "\n".join([steps[0]] + [steps[-1]] * 15)
    return BadCase(prompt="Please solve: " + q.replace("How many", "What is the number of"),
                   bad_output=f"<think>\n{loop}\n</think>\n\nThe answer is $\\boxed{{{final}}}$.", tags=["loop"])


def fill_embeddings(store, real: int, figures: dict) -> None:
    """Embed `real` samples for real; every other sample gets a real vector plus noise."""
    import numpy as np
    import polars as pl

    from pipeline.misalignment.trace.neighbours import embedder, sample_text

    model = embedder()
    rows_ = store.frame(f"SELECT s.sample_id, q.text, s.reasoning, s.answer FROM samples s JOIN questions q "
                        f"USING (question_id) ORDER BY random() LIMIT {real}")
    t = time.perf_counter()
    real_vectors = model.embed([sample_text(*r) for r in rows_.select("text", "reasoning", "answer").iter_rows()])
    figures["embed_per_s"] = real / (time.perf_counter() - t)
    rng = np.random.default_rng(0)
    ids = store.frame("SELECT sample_id FROM samples ORDER BY sample_id")["sample_id"]
    for start in range(0, len(ids), 100_000):
        part = ids[start:start + 100_000]
        v = real_vectors[rng.integers(0, real, len(part))] + rng.normal(0, 0.02, (len(part), 384)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        store.insert("sample_embeddings", pl.DataFrame({"sample_id": part, "model_id": model.model_id,
                                                        "vector": pl.Series(v, dtype=pl.Array(pl.Float32, 384))}))


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def run_size(n: int, knn: bool, real: int) -> dict:
    from pipeline.misalignment.trace import candidates, trace_case
    from pipeline.misalignment.trace.lexical import load_index
    from pipeline.store import Store, now
    import polars as pl
    from schemas import rows

    methods = ("signature", "lexical", "embedding", "fused") if knn else ("signature", "lexical", "fused")
    figures, items, rng = {"samples": n, "methods": list(methods)}, base_items(), random.Random(0)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "trace.duckdb") as store:
        t = time.perf_counter()
        for start in range(0, n, 50_000):
            questions, samples, verdicts = batch(items, start, min(50_000, n - start), rng)
            store.insert_many({"questions": questions, "samples": samples, "verdicts": verdicts})
        figures["insert_s"] = time.perf_counter() - t
        case = the_case()
        store.insert("bad_cases", pl.DataFrame([{"case_id": case.case_id, "prompt": case.prompt,
                                                 "bad_output": case.bad_output, "expected": None, "tags": case.tags,
                                                 "model": None, "source": "bench", "created_at": now()}],
                                               schema=rows.BAD_CASE))
        figures["rss_after_insert_mb"] = peak_rss_mb()
        _, figures["bm25_build_s"] = timed(lambda: load_index(store))
        figures["rss_after_bm25_mb"] = peak_rss_mb()
        if knn:
            _, figures["embeddings_fill_s"] = timed(lambda: fill_embeddings(store, real, figures))
        _, figures["first_trace_s"] = timed(lambda: trace_case(store, case.case_id, methods=methods))
        for m in methods[:-1]:
            figures[f"{m}_s"] = sorted(timed(lambda: candidates(store, case, m, 50))[1] for _ in range(3))[1]
        figures["warm_trace_s"] = sorted(timed(lambda: trace_case(store, case.case_id, methods=methods))[1]
                                         for _ in range(3))[1]
        figures["db_mb"] = (Path(tmp) / "trace.duckdb").stat().st_size / 2**20
    figures["peak_rss_mb"] = peak_rss_mb()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--knn-up-to", type=int, default=100_000, help="largest size traced with embeddings too")
    parser.add_argument("--real-embed", type=int, default=2000, help="samples embedded for real per size")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_size(args.child, args.child <= args.knn_up_to, args.real_embed)))
        return
    for n in [int(s) for s in args.sizes.split(",")]:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--knn-up-to", str(args.knn_up_to),
                              "--real-embed", str(args.real_embed)], capture_output=True, text=True, cwd=ROOT)
        if out.returncode:
            sys.exit(f"size {n} failed:\n{out.stderr[-3000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        per = " | ".join(f"{m} {r[m + '_s']:.2f} s" for m in r["methods"][:-1])
        print(f"{n:>9,} samples ({', '.join(r['methods'])}): warm trace {r['warm_trace_s']:.2f} s ({per}) | "
              f"first trace {r['first_trace_s']:.1f} s | BM25 build {r['bm25_build_s']:.1f} s | insert "
              f"{r['insert_s']:.1f} s | peak RSS {r['peak_rss_mb']:,.0f} MB (after insert "
              f"{r['rss_after_insert_mb']:,.0f}, after BM25 build {r['rss_after_bm25_mb']:,.0f}) | db "
              f"{r['db_mb']:,.0f} MB", flush=True)
        if "embed_per_s" in r:
            print(f"           MiniLM: {r['embed_per_s']:.1f} samples/s measured on {args.real_embed} -> embedding "
                  f"all {n:,} would take {n / r['embed_per_s'] / 60:.0f} min (once; later traces embed only new "
                  f"samples); storing the vectors took {r['embeddings_fill_s']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
