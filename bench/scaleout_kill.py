"""Kill -9 the Ray filter stage mid-run, resume it, compare with the single-process result.

    .venv/bin/python bench/scaleout_kill.py                   # 3 trials, 20k samples
    .venv/bin/python bench/scaleout_kill.py --trials 5 --samples 10000

Each trial: a fresh copy of one database; a child process runs the filter pass
on the Ray executor (flows/ray_executor.py) (its own local Ray cluster of 2 CPUs, chunks of 500 samples) and is killed with
SIGKILL a random moment after a finished Parquet part appears (some chunks ingested, some
parts waiting, some in flight); a second child resumes. Printed per trial: what the kill left
(parts on disk), rows the resume took from the killed run's parts, and whether the verdict
table equals the single-process one (same rows, no duplicates). Minutes per trial here (each
child starts Prefect's temporary server and Ray).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = "sample_id, rule, rule_version, config_hash, passed, score, reason"


def _config():
    from schemas.config import CurateConfig

    return CurateConfig(decontamination={"check_answers": False}, scaleout={"runner": "ray", "chunk_rows": 500})


def child(db: str, run_id: str) -> None:
    from pipeline.runtime_env import apply_defaults

    apply_defaults()
    from flows.ray_executor import RayExecutor, ray_cluster
    from pipeline.rules import pass_rules
    from pipeline.store import Store
    from pipeline.verdict_loop import run_verdicts

    config = _config()
    with ray_cluster(config.scaleout), Store(db) as store:
        counts = run_verdicts(store, pass_rules(config, "filter"), run_id, "filter", RayExecutor(config.scaleout),
                              chunk_rows=config.scaleout.chunk_rows)
    print("checked", counts[0].checked, flush=True)


def trial(base: Path, reference, tmp: Path, rng: random.Random) -> str:
    from pipeline.scaleout.parts import parts_root
    from pipeline.store import Store

    db = tmp / f"trial-{rng.randrange(10**6)}.duckdb"
    shutil.copy(base, db)
    root = parts_root(db)
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(db), "killed"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    polls, wait = 0, rng.randint(1, 60)  # polls of 50 ms with a finished part present
    while polls < wait:
        time.sleep(0.05)
        if proc.poll() is not None:
            return "the run finished before the kill (try more samples)"
        if root.exists() and any(root.rglob("part-*.parquet")):
            polls += 1
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = sorted(p.name for p in root.rglob("part-*.parquet")) if root.exists() else []
    out = subprocess.run([sys.executable, __file__, "--child", str(db), "resumed"], capture_output=True, text=True)
    if out.returncode:
        return f"resume failed: {out.stderr[-2000:]}"
    with Store(db, read_only=True) as store:
        mine = store.frame(f"SELECT {COLUMNS} FROM verdicts ORDER BY ALL")
        by_run = dict(store.frame("SELECT run_id, count(*) FROM verdicts GROUP BY run_id").rows())
    db.unlink()
    return (f"killed with {len(left)} part(s) on disk; rows by run {by_run}; "
            f"equal to single process: {mine.equals(reference)}; parts left: {root.exists()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from pipeline.runtime_env import apply_defaults

    apply_defaults()
    from bench.scale import synthetic_batch
    from pipeline.rules import pass_rules
    from pipeline.store import Store
    from pipeline.verdict_loop import run_verdicts

    tmp = Path(tempfile.mkdtemp(prefix="curate-scaleout-kill-"))
    try:
        base = tmp / "base.duckdb"
        questions, samples = synthetic_batch(0, args.samples, seed=0)
        with Store(base) as store:
            store.insert("questions", questions)
            store.insert("samples", samples)
        shutil.copy(base, tmp / "local.duckdb")
        config = _config()
        with Store(tmp / "local.duckdb") as store:
            run_verdicts(store, pass_rules(config, "filter"), "local", "filter")
            reference = store.frame(f"SELECT {COLUMNS} FROM verdicts ORDER BY ALL")
        rng = random.Random(args.seed)
        for i in range(args.trials):
            t = time.perf_counter()
            print(f"trial {i + 1}: {trial(base, reference, tmp, rng)} ({time.perf_counter() - t:.0f} s)", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
