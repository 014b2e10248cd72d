"""Rule-filter stage on N synthetic samples: single process vs Prefect tasks on a local Ray cluster.

    .venv/bin/python bench/scaleout_ray.py                    # 50k samples, 2 Ray workers
    .venv/bin/python bench/scaleout_ray.py --samples 10000 --workers 2 --chunk-rows 5000

Two copies of one DuckDB file with N samples from bench/scale.py's synthetic_batch. The stage is
what flows/curate_flow.py runs: the ten cheap rules, then the answer decontamination rule
(--no-decontam leaves it out). Single process: the same loop, inline. Ray:
pipeline/verdict_loop.py on flows/ray_executor.py's RayExecutor (this process reads chunks, tasks
on Ray write Parquet parts, this process ingests them). Printed separately: the fixed costs (Prefect's temporary server,
starting Ray), the first Ray run (workers import Prefect and warm the rules up) and a second
run on a fresh copy with the cluster warm. Both paths must store the same verdicts; checked.

CPU seconds are printed beside wall time because on a shared machine wall time also measures
the neighbours: single process = this process (rules, polars and DuckDB threads); Ray = the
coordinator process (reads, ingest, Prefect client) + the workers' CPU time inside the chunk
checks (not Prefect's task bookkeeping on the workers, nor Ray's own daemons).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(path: Path, n: int) -> None:
    from bench.scale import synthetic_batch
    from pipeline.store import Store

    with Store(path) as store:
        for start in range(0, n, 50_000):
            questions, samples = synthetic_batch(start, min(50_000, n - start), seed=0)
            store.insert("questions", questions)
            store.insert("samples", samples)


def verdicts(path: Path):
    from pipeline.store import Store

    with Store(path, read_only=True) as store:
        return store.frame("""SELECT sample_id, rule, rule_version, config_hash, passed, score, reason
                              FROM verdicts ORDER BY ALL""")


def timed(module, name: str, spent: dict) -> None:
    """Add the wall time of module.name's calls to spent[name] (the coordinator's own work)."""
    inner = getattr(module, name)

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - t

    setattr(module, name, wrapper)


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--no-decontam", action="store_true", help="cheap rules only")
    args = parser.parse_args()

    from pipeline.runtime_env import apply_defaults

    apply_defaults()
    from prefect import flow

    import pipeline.verdict_loop as loop
    from flows.ray_executor import RayExecutor, ray_cluster
    from pipeline.benchmarks import index_for
    from pipeline.rules import pass_rules
    from pipeline.store import Store
    from schemas.config import CurateConfig

    spent: dict[str, float] = {}
    timed(loop, "ingest_parts", spent)  # ingesting parts into DuckDB
    results = []  # the chunks' summaries (their worker CPU time)
    drive = loop.drive

    def keep_results(*args, **kwargs):
        tallies, done = drive(*args, **kwargs)
        results.extend(done)
        return tallies, done

    loop.drive = keep_results

    def passes(db: Path, executor) -> list:
        """The filter stage's two passes (cheap rules, answer decontamination) on one executor."""
        with Store(db) as store:
            counts = []
            for stage in ("filter", "decontam"):
                counts += loop.run_verdicts(store, pass_rules(config, stage, index), "bench", stage, executor,
                                            chunk_rows=config.scaleout.chunk_rows)
            return counts

    n = args.samples
    config = CurateConfig(decontamination={"check_answers": not args.no_decontam},
                          scaleout={"runner": "ray", "num_workers": args.workers, "chunk_rows": args.chunk_rows})
    tmp = Path(tempfile.mkdtemp(prefix="curate-scaleout-"))
    try:
        t = time.perf_counter()
        build(tmp / "base.duckdb", n)
        for name in ("local", "ray1", "ray2"):
            shutil.copy(tmp / "base.duckdb", tmp / f"{name}.duckdb")
        print(f"{n} samples stored in {time.perf_counter() - t:.1f} s; load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} CPUs")
        index = index_for(config) if not args.no_decontam else None

        t, cpu = time.perf_counter(), cpu_self()
        local_counts = passes(tmp / "local.duckdb", loop.INLINE)
        local_s, local_cpu = time.perf_counter() - t, cpu_self() - cpu

        t = time.perf_counter()
        flow(name="warm-up")(lambda: None)()  # Prefect's temporary server, once per process
        prefect_s = time.perf_counter() - t
        t = time.perf_counter()
        with ray_cluster(config.scaleout):
            ray_start_s = time.perf_counter() - t
            times, cpus = [], []
            for name in ("ray1", "ray2"):
                spent.clear()
                results.clear()
                t, cpu = time.perf_counter(), cpu_self()
                counts = passes(tmp / f"{name}.duckdb", RayExecutor(config.scaleout))
                times.append(time.perf_counter() - t)
                cpus.append((cpu_self() - cpu, sum(r.cpu_seconds for r in results)))
                assert counts == local_counts, (counts, local_counts)
        same = all(verdicts(tmp / f"{name}.duckdb").equals(verdicts(tmp / "local.duckdb")) for name in ("ray1", "ray2"))

        rules_n = len(local_counts)
        print(f"filter stage, {rules_n} rules, {n} samples; verdict tables equal: {same}")
        print(f"  single process          {local_s:7.1f} s  {n / local_s:8.0f} samples/s"
              f"   CPU {local_cpu:.1f} s")
        print(f"  Ray, {args.workers} workers, 1st run  {times[0]:7.1f} s  {n / times[0]:8.0f} samples/s"
              "  (workers import Prefect, warm the rules)")
        print(f"  Ray, {args.workers} workers, warm     {times[1]:7.1f} s  {n / times[1]:8.0f} samples/s"
              f"   CPU: coordinator {cpus[1][0]:.1f} s + workers' chunks {cpus[1][1]:.1f} s")
        print(f"  coordinator, warm run: ingesting parts {spent.get('ingest_parts', 0):.1f} s "
              f"({n * rules_n} verdict rows)")
        print(f"  fixed: Prefect temporary server {prefect_s:.1f} s, Ray start {ray_start_s:.1f} s, "
              f"first-run warm-up ~{times[0] - times[1]:.1f} s")
        if not same:
            sys.exit("the two paths stored different verdicts")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
