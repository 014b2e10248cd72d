"""Speed of `curate rules preview` over many stored samples: a SQL rule on the samples' own
columns, a SQL rule on verdict features (failed_rules), and a Python rule (repetition, on real
text). Goals (issue: the misalignment loop): SQL <= 10 s and a cheap rule <= 2 min at 10^6.

    .venv/bin/python bench/preview_speed.py                    # 10^5 and 10^6
    .venv/bin/python bench/preview_speed.py --sizes 100000
    .venv/bin/python bench/preview_speed.py --keep /tmp/preview-stores   # build once, reuse after

Each size runs in its own process on a fresh DuckDB file, with the rows of bench/trace_speed.py
(real GSM8K/MBPP text with shifted numbers, synthetic verdicts: ten rules, 3% failing each).
A preview's time includes writing its preview_verdicts and the whole report (groups, labels,
overlap, the export rerun); the second preview of the same rule reuses the stored rows. The first
preview on a store also builds the baseline every preview compares against (the kept samples and
the export as they stand: pipeline/misalignment/preview_baseline.py); later previews, of any rule,
read it back while the store is unchanged.
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

SQL_RULES = {
    "sample columns": "domain = 'math' AND reasoning_chars < 300",
    "verdict features": "list_contains(failed_rules, 'repetition') AND NOT list_contains(failed_rules, 'length')",
}


def run_size(n: int, keep: Path | None = None) -> dict:
    import random

    from bench.trace_speed import base_items, batch, peak_rss_mb
    from pipeline.config_loading import load_run_config
    from pipeline.misalignment.loop_rules import resolve
    from pipeline.misalignment.preview import preview
    from pipeline.store import Store

    figures, config = {"samples": n}, load_run_config(None)
    with tempfile.TemporaryDirectory() as tmp:
        db = (keep / f"preview-{n}.duckdb") if keep else Path(tmp) / "preview.duckdb"
        if keep and db.exists():
            with Store(db) as store:  # a kept store: previews start from nothing again
                store.con.execute("DELETE FROM preview_verdicts")
                store.con.execute("DELETE FROM meta WHERE key = 'preview_baseline'")
        else:
            db.parent.mkdir(parents=True, exist_ok=True)
            t = time.perf_counter()
            with Store(db) as store:
                items, rng = base_items(), random.Random(0)
                for start in range(0, n, 50_000):
                    questions, samples, verdicts = batch(items, start, min(50_000, n - start), rng)
                    store.insert_many({"questions": questions, "samples": samples, "verdicts": verdicts})
            figures["store built s"] = round(time.perf_counter() - t, 1)
        for label, where in SQL_RULES.items():
            path = Path(tmp) / f"r{len(figures)}.yaml"
            path.write_text(f"name: r{len(figures)}\nversion: 1\ndescription: bench\nwhere: {json.dumps(where)}\n")
            rule = resolve(str(path), config)
            t = time.perf_counter()
            report = preview(db, rule, config)
            figures[f"sql ({label}) s"] = round(time.perf_counter() - t, 2)
            figures[f"sql ({label}) hits"] = report.hits
            t = time.perf_counter()
            preview(db, rule, config)
            figures[f"sql ({label}) again s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        report = preview(db, resolve("repetition", config), config)
        figures["cheap (repetition) s"] = round(time.perf_counter() - t, 2)
        figures["cheap (repetition) hits"] = report.hits
        figures["db_mb"] = round(db.stat().st_size / 2**20)
    figures["peak_rss_mb"] = round(peak_rss_mb())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--keep", type=Path, help="keep the built stores in this folder and reuse them")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # run one size in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_size(args.one, args.keep)))
        return
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), *(["--keep", str(args.keep)] if args.keep else [])],
                             capture_output=True, text=True)
        if out.returncode:
            print(f"{n}: failed\n{out.stderr[-2000:]}")
            continue
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{n:>9,} samples: " + ", ".join(f"{k} {v}" for k, v in figures.items() if k != "samples"))


if __name__ == "__main__":
    main()
