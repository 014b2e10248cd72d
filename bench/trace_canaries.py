"""Tracing planted canaries: hit@1 and hit@10 per method and fused.

    .venv/bin/python bench/trace_canaries.py                     # 2,000 samples, 40 canaries
    .venv/bin/python bench/trace_canaries.py --math 300 --per-kind 4

A fresh DuckDB store of real samples (tests/misalignment/canaries.py: GSM8K train solutions, two
per question, MBPP solutions; real verdicts from the cheap rules, answer_match and
decontam_answer) with canaries of five kinds (loop, wrong answer, leaked MATH-500 solution,
self-identity, truncation), each beside a clean sample of its own question, and one bad case per
canary (the question worded differently, a similar bad output). Each case is traced
(pipeline/misalignment/trace); a method hits at k when the canary is among the first k samples
it lists. The signature method ranks ties (samples failing the same rules the same way) equal;
they are listed by sample id, so its hit@1 counts the canary only when it comes first there.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = ("signature", "lexical", "embedding", "fused")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--math", type=int, default=900, help="GSM8K questions (two samples each)")
    parser.add_argument("--code", type=int, default=120, help="MBPP samples")
    parser.add_argument("--per-kind", type=int, default=8, help="canaries of each of the five kinds")
    args = parser.parse_args()

    from pipeline.misalignment.trace import trace_case
    from pipeline.misalignment.trace.neighbours import embed_missing, embedder
    from tests.misalignment.canaries import KINDS, build_store

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        store, canaries = build_store(Path(tmp) / "curate.duckdb", args.math, args.code, args.per_kind)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        embed_missing(store, embedder())
        embedded = time.perf_counter() - t0
        n = store.count("samples")
        print(f"{n} samples ({len(canaries)} canaries), store with verdicts {built:.1f} s, embeddings {embedded:.1f} s")
        positions, seconds = [], []
        for c in canaries:
            t0 = time.perf_counter()
            trace_id = trace_case(store, c.case.case_id, top=50)["trace_id"][0]
            seconds.append(time.perf_counter() - t0)
            listed = store.frame("SELECT method, list(sample_id ORDER BY rank, sample_id) AS ids FROM trace_candidates "
                                 "WHERE trace_id = ? GROUP BY method", [trace_id])
            lists = dict(zip(listed["method"].to_list(), listed["ids"].to_list()))
            positions.append((c.kind, {m: (lists.get(m, []).index(c.sample_id) + 1
                                           if c.sample_id in lists.get(m, []) else None) for m in METHODS}))
        store.close()

    def hit(method: str, k: int, kind: str | None = None) -> str:
        chosen = [p[method] for kd, p in positions if kind in (None, kd)]
        return f"{sum(1 for r in chosen if r is not None and r <= k) / len(chosen):.2f}"

    print(f"trace: median {sorted(seconds)[len(seconds) // 2]:.2f} s per case, max {max(seconds):.2f} s\n")
    print("| method | hit@1 | hit@10 | " + " | ".join(f"{k} @10" for k in KINDS) + " |")
    print("|---|---|---|" + "---|" * len(KINDS))
    for m in METHODS:
        print(f"| {m} | {hit(m, 1)} | {hit(m, 10)} | " + " | ".join(hit(m, 10, k) for k in KINDS) + " |")


if __name__ == "__main__":
    main()
