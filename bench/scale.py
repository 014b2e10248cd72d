"""Scale: synthetic stored samples through the cheap rule filters, rebalance and export.

    .venv/bin/python bench/scale.py                      # 100k and 1M samples
    .venv/bin/python bench/scale.py --sizes 20000        # a quick look

Each size runs in its own process (peak RSS is per process) on a fresh DuckDB file: N samples
(2 per question, four domains, ~1.5 KB of plausible reasoning each; 1 in 20 carries a defect a
rule catches) are inserted in batches, then the real stages run: run_verdicts (pipeline/verdict_loop.py) with the ten cheap
rules, then select_and_export (rebalance to a quarter of N, chat-template checks with the
SmolLM2 tokenizer, Parquet shards). DuckDB is capped at --memory-limit (256 MB by default; it
spills beyond; the lean kept_samples view and the DuckDB-side rebalance run within 256 MB).
Prints wall time per phase and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOMAINS = ["math", "code", "science", "logic"]
STEPS = [
    "First we write down what is given: {a} items and {b} more each day.",
    "Multiplying {a} by {b} gives {ab}, which we keep for the next step.",
    "Now we check the units: everything is counted in whole items, so no conversion is needed.",
    "Adding the remaining {c} items to {ab} gives {total}.",
    "We verify by estimating: {a} is about {a10} tens, so the product is near {est}.",
    "The constraint says the answer must be positive, and {total} is positive.",
    "Next we consider whether any case was missed; the only other case is zero, which is excluded.",
    "So the quantity we were asked for is {total}.",
]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_batch(start: int, count: int, seed: int):
    import polars as pl

    from pipeline.stages.synthesize import SAMPLE_SCHEMA
    from pipeline.store import now

    rng = random.Random(seed + start)
    created = now()
    questions, samples = [], []
    for i in range(start, start + count, 2):
        qid, domain = f"q{i // 2:08d}", DOMAINS[(i // 2) % 4]
        a, b, c = rng.randint(10, 999), rng.randint(2, 99), rng.randint(1, 500)
        questions.append({"question_id": qid, "source": f"synthetic-{domain}", "domain": domain, "subdomain": None,
                          "text": f"A shop gets {a} items and {b} times as many each week, plus {c}. How many?",
                          "reference_answer": str(a * b + c), "answer_type": "math", "tests": None,
                          "pool_path": "synthetic", "pool_line": i // 2 + 1, "first_run_id": "bench"})
        for j in range(2):
            values = dict(a=a, b=b, c=c, ab=a * b, total=a * b + c, a10=a // 10, est=(a // 10) * 10 * b)
            steps = [s.format(**values) for s in rng.sample(STEPS, k=rng.randint(5, 8))]
            reasoning = " ".join(steps)
            answer = f"The shop has {a * b + c} items in total. This follows from {a} times {b} plus {c}."
            if (i + j) % 20 == 0:  # a defect the rules catch: text after a forced close / a leaked token
                answer += " <|im_end|>"
            samples.append({
                "sample_id": f"s{i + j:09d}", "question_id": qid, "run_id": "bench", "sample_index": j,
                "gen_config_hash": "bench", "model": "synthetic", "requested_format": "prose", "prompt_hash": "p",
                "messages": json.dumps([{"role": "user", "content": questions[-1]["text"]}]),
                "raw_text": f"<think>\n{reasoning}\n</think>\n\n{answer}", "reasoning": reasoning, "answer": answer,
                "think_closed_by": "model", "reasoning_finish": None, "finish_reason": "stop",
                "prompt_tokens": 40, "completion_tokens": len(reasoning) // 4 + 30, "sampling_params": "{}",
                "created_at": created, "reasoning_container": "think_tags", "realized_format": "prose",
            })
    qframe = pl.DataFrame(questions, schema_overrides={"tests": pl.List(pl.String), "subdomain": pl.String})
    return qframe, pl.DataFrame(samples, schema=SAMPLE_SCHEMA)


def run_size(n: int, memory_limit: str, keep: bool) -> dict:
    import polars as pl

    from pipeline.rules import pass_rules
    from pipeline.verdict_loop import run_verdicts
    from pipeline.stages.export import select_and_export
    from pipeline.store import Store, now
    from schemas.config import CurateConfig

    tmp = Path(tempfile.mkdtemp(prefix="curate-scale-"))
    figures = {"samples": n, "db": str(tmp / "scale.duckdb") if keep else None}
    with Store(tmp / "scale.duckdb", memory_limit=memory_limit) as store:
        t = time.perf_counter()
        for start in range(0, n, 50_000):
            questions, samples = synthetic_batch(start, min(50_000, n - start), seed=0)
            store.insert("questions", questions)
            store.insert("samples", samples)
            difficulty = questions.select("question_id").with_columns(
                method=pl.lit("pass_rate"), version=pl.lit(1, pl.Int32),
                score=(pl.col("question_id").str.slice(1).cast(pl.Int64) % 97 / 96.0),
                n_samples=pl.lit(2, pl.Int32), detail=pl.lit(""), run_id=pl.lit("bench"), created_at=pl.lit(now()))
            store.replace("question_difficulty", difficulty)
        figures["insert_s"] = time.perf_counter() - t
        figures["rss_after_insert_mb"] = peak_rss_mb()

        t = time.perf_counter()
        counts = run_verdicts(store, pass_rules(CurateConfig(), "filter"), "bench", "filter")
        figures["filters_s"] = time.perf_counter() - t
        figures["failed"] = {c.rule: c.failed for c in counts if c.failed}
        figures["rss_after_filters_mb"] = peak_rss_mb()

        config = CurateConfig(rebalance={"targets": {d: 0.25 for d in DOMAINS}, "max_samples": n // 4},
                              export={"shard_rows": 20_000})
        t = time.perf_counter()
        manifest = select_and_export(store, config, "bench", tmp / "out")
        figures["rebalance_export_s"] = time.perf_counter() - t
        figures["exported"] = manifest.total_rows
        figures["shards"] = len(manifest.shards)
        figures["rejected"] = manifest.rejected
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["db_mb"] = (tmp / "scale.duckdb").stat().st_size / 2**20
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--memory-limit", default="256MB", help="DuckDB's memory cap (it spills beyond)")
    parser.add_argument("--keep", action="store_true", help="keep each size's DuckDB file and shards (path printed)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_size(args.child, args.memory_limit, args.keep)))
        return
    # The target tokenizer's folder is converted from the shipped GGUF on first use (loading the
    # weights): do it first, in a process of its own, so no size's peak RSS includes it (peak RSS
    # survives fork + exec on Linux, so not in this parent either).
    subprocess.run([sys.executable, "-c", "from pipeline.runtime_env import apply_defaults; apply_defaults(); "
                    "from pipeline.models import resolve_model; from schemas.config import ExportConfig; "
                    "resolve_model(ExportConfig().tokenizer)"], cwd=ROOT, check=True)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--memory-limit", args.memory_limit]
                             + (["--keep"] if args.keep else []), capture_output=True, text=True, cwd=ROOT)
        if out.returncode:
            sys.exit(f"size {n} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{n:>9,} samples: insert {r['insert_s']:6.1f} s | filters {r['filters_s']:7.1f} s "
              f"({n / r['filters_s']:,.0f} samples/s) | rebalance+export {r['rebalance_export_s']:6.1f} s "
              f"({r['exported']:,} rows, {r['shards']} shards, rejected {r['rejected']}) | peak RSS "
              f"{r['peak_rss_mb']:,.0f} MB (after insert {r['rss_after_insert_mb']:,.0f}, after filters "
              f"{r['rss_after_filters_mb']:,.0f}) | db {r['db_mb']:,.0f} MB", flush=True)
        print(f"           rule failures: {r['failed']}" + (f" | kept: {r['db']}" if r["db"] else ""), flush=True)
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        scale = b["samples"] / a["samples"]
        total = lambda r: r["insert_s"] + r["filters_s"] + r["rebalance_export_s"]  # noqa: E731
        print(f"{scale:.0f}x the samples: {total(b) / total(a):.1f}x the time, "
              f"{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}x the peak RSS")


if __name__ == "__main__":
    main()
