"""Time and size of `curate report` on large stores. Goal (issue 17): a 10^6-sample store's
report builds in <= 60 s and stays <= 5 MB.

    .venv/bin/python bench/report_speed.py                    # 10^5 and 10^6
    .venv/bin/python bench/report_speed.py --sizes 100000
    .venv/bin/python bench/report_speed.py --keep /tmp/stores   # build each store once, reuse it next time

Each size runs in its own process on a fresh DuckDB file holding the rows of bench/trace_speed.py
(as bench/preview_speed.py: real GSM8K/MBPP text with shifted numbers, ten rules of synthetic
verdicts, 3% failing each), plus what the report also reads, made in SQL: a `runs` row with the
default config's targets, a reference level on half the math questions, two difficulty signals
per question, a judge's verdicts on every tenth sample and an export of up to 10,000 kept
samples. The time is `build_report` alone (the store is built first); the Vega bundle comes
from its cache under CURATE_HOME (building it once costs about 6 s more).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXTRA = [  # what a run would add that bench/trace_speed.py's rows lack
    "UPDATE questions SET level = (hash(question_id) % 5) / 4 WHERE domain = 'math' AND hash(question_id) % 2 = 0",
    *(f"""INSERT INTO question_difficulty
          SELECT question_id, '{m}', 1, (hash(question_id || '{m}') % 1000) / 1000, 2, NULL, 'bench', now(), NULL
          FROM questions""" for m in ("pass_rate", "combined")),
    """INSERT INTO verdicts
       SELECT sample_id, 'judge', 'bench_judge', 1, hash(sample_id) % 5 >= 1, 1 + hash(sample_id) % 5, 'rationale',
              '{"error": null}', 'bench', now(), 900 + hash(sample_id) % 200, 40 + hash(sample_id) % 30, ''
       FROM samples WHERE hash(sample_id) % 10 = 0""",
    "INSERT INTO exports VALUES ('export-bench', 'bench', now(), 'out', 'h', '{}')",
    """INSERT INTO selections
       SELECT 'export-bench', sample_id, domain, NULL, 'bench' FROM kept_samples ORDER BY hash(sample_id) LIMIT 10000""",
]


def build_store(db: Path, n: int) -> None:
    import random

    import polars as pl

    from bench.trace_speed import base_items, batch
    from pipeline.config_loading import load_run_config
    from pipeline.store import Store, now

    with Store(db) as store:
        items, rng = base_items(), random.Random(0)
        for start in range(0, n, 50_000):
            questions, samples, verdicts = batch(items, start, min(50_000, n - start), rng)
            store.insert_many({"questions": questions, "samples": samples, "verdicts": verdicts})
        config = load_run_config(None)
        store.insert("runs", pl.DataFrame([{
            "run_id": "bench", "started_at": now(), "finished_at": now(), "status": "finished",
            "config_hash": "h", "config": json.dumps(config.model_dump(mode="json")), "counts": "{}",
            "error": None}]))
        for statement in EXTRA:
            store.con.execute(statement)


def run_size(n: int, keep: Path | None) -> dict:
    from bench.trace_speed import peak_rss_mb
    from pipeline.report.build import build_report
    from pipeline.report.html import vega_bundle
    from pipeline.store import Store

    figures = {"samples": n}
    with tempfile.TemporaryDirectory() as tmp:
        db = (keep or Path(tmp)) / f"report-{n}.duckdb"
        if not db.exists():
            t = time.perf_counter()
            build_store(db, n)
            figures["store build s"] = round(time.perf_counter() - t, 1)
        vega_bundle()  # from the cache, or built once (not part of the report's time)
        with Store(db) as store:
            figures["verdicts"] = store.count("verdicts")
            result = build_report(store.con, Path(tmp) / "report.html", db_name=db.name)
        figures["report s"] = result.seconds
        figures["report MB"] = round(result.bytes / 2**20, 2)
        figures["figures drawn"] = sum(1 for f in result.figures.values() if f.spec is not None)
        figures["db MB"] = round(db.stat().st_size / 2**20)
    figures["peak_rss_mb"] = round(peak_rss_mb())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--keep", type=Path, help="folder to keep the built stores in (and reuse them from)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # run one size in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_size(args.one, args.keep)))
        return
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        keep = ["--keep", str(args.keep)] if args.keep else []
        out = subprocess.run([sys.executable, __file__, "--one", str(n), *keep], capture_output=True, text=True)
        if out.returncode:
            print(f"{n}: failed\n{out.stderr[-2000:]}")
            continue
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{n:>9,} samples: " + ", ".join(f"{k} {v}" for k, v in figures.items() if k != "samples"))


if __name__ == "__main__":
    main()
