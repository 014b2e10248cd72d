"""Kill -9 trials: SIGKILL a real `curate run` at random (seeded) moments in every stage, resume,
repeat; then compare the database with an uninterrupted run of the same config.

    .venv/bin/python bench/kill_resume.py [--kills 23] [--questions 8] [--seed 0] [--pools small|all]
                                          [--concurrency 8] [--no-baseline]

One vLLM OpenAI-compatible server (the embedded default model, 127.0.0.1, a free port) serves
every run, so a killed run restarts in seconds. Prints each kill (the stage aimed at and the
stage hit, read from the run's Prefect task log; what the database held right after), kills per
stage, times, and the comparison: samples lost or duplicated (ids, logical keys, content
hashes), verdict rows and passes per rule, kept, selected and exported rows.

Texts: requests carry per-sample seeds, but vLLM batches concurrent requests and a sample's
numbers (hence its sampled tokens) depend on what it was batched with, so two uninterrupted runs
already differ in some texts (the baseline run measures how many). What must be equal whatever the
texts is compared strictly; counts that depend on the texts are compared strictly only when every
text matches. `--concurrency 1` sends one request at a time: reproducible texts, slower runs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("CURATE_HOME", str(Path(__file__).resolve().parent.parent / ".curate"))

from pipeline.runtime_env import apply_defaults  # noqa: E402

apply_defaults()

from tests.kill_harness import (SMALL_POOLS, STAGE_ORDER, compare, kill_resume, run_curate, snapshot,  # noqa: E402
                                stage_of, text_differences, write_config)
from tests.vllm_server import SERVED_NAME, VllmServer  # noqa: E402

# Relative share of kills per stage: long stages (screening, synthesis, judging, export) get more.
WEIGHTS = {"startup": 1, "ingest": 2, "screen": 3, "domains": 1, "synthesis": 4, "filters": 2, "verify": 2,
           "judging": 3, "scoring": 2, "export": 3}


def plan_kills(total: int, stages: set[str], rng: random.Random) -> list[str]:
    """`total` stage names in pipeline order, spread by WEIGHTS, each stage at least once."""
    weights = {s: w for s, w in WEIGHTS.items() if s in stages or s == "startup"}
    counts = dict.fromkeys(weights, 1)
    for _ in range(max(0, total - len(counts))):
        stage = rng.choices(list(weights), [w / counts[s] for s, w in weights.items()])[0]
        counts[stage] += 1
    return [s for s in STAGE_ORDER for _ in range(counts.get(s, 0))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=23)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pools", choices=["all", "small"], default="small",
                        help="five small shipped pools (2,545 questions) or all of them (21,716 to ingest and screen)")
    parser.add_argument("--concurrency", type=int, default=8, help="engine.max_concurrency (1: reproducible texts)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the second uninterrupted run that measures how much texts vary run to run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (databases, logs)")
    args = parser.parse_args()
    # A stopped bench still stops its server and its current run (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="kill-resume-", dir=os.environ["CURATE_HOME"]))
    began = time.monotonic()
    server = VllmServer(tmp / "vllm-server.log")
    print(f"starting the vLLM server (log: {server.log_path}) ...", flush=True)
    up = server.start()
    print(f"server ready in {up:.0f} s at {server.url}", flush=True)
    try:
        config = write_config(tmp / "config.yaml", server.url, SERVED_NAME, limit=args.questions,
                              pools=None if args.pools == "all" else SMALL_POOLS, max_concurrency=args.concurrency)
        ref_db, db = tmp / "reference.duckdb", tmp / "killed.duckdb"
        ref = run_curate(config, ref_db, tmp / "out-reference", requests=server.request_counts)
        if ref.returncode != 0:
            sys.exit("reference run failed:\n" + ref.output[-3000:])
        ref_snap = snapshot(ref_db)
        print(f"reference run: {ref.seconds:.0f} s, {ref_snap.samples} samples, tasks: "
              + ", ".join(f"{name} {t:.0f}s" for name, t in ref.tasks), flush=True)
        baseline = None
        if not args.no_baseline:
            base = run_curate(config, tmp / "baseline.duckdb", tmp / "out-baseline")
            if base.returncode != 0:
                sys.exit("baseline run failed:\n" + base.output[-3000:])
            baseline = (compare(ref_snap, snapshot(tmp / "baseline.duckdb")),
                        text_differences(ref_db, tmp / "baseline.duckdb"))
            print(f"baseline run (uninterrupted, again): {base.seconds:.0f} s", flush=True)
        plan = plan_kills(args.kills, {stage_of(n) for n, _ in ref.tasks}, rng)
        t0 = time.monotonic()
        trials, final = kill_resume(config, db, tmp / "out", plan, ref, ref_snap, rng, requests=server.request_counts,
                                    log=lambda m: print(m, flush=True))
        kill_phase = time.monotonic() - t0
        got = snapshot(db)
        mismatches, notes = compare(ref_snap, got)
        report(trials, final, ref, ref_snap, got, mismatches, notes, kill_phase, up,
               text_differences(ref_db, db), orphans(db, tmp / "out"), baseline)
        print(f"\nbench total {time.monotonic() - began:.0f} s", flush=True)
    finally:
        server.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def orphans(db: Path, out: Path) -> str:
    """Export folders killed runs left: unfinished (`.export-*.partial`), and finished but never
    recorded in `exports` (killed between the rename and the database insert)."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        recorded = {r[0] for r in con.sql("SELECT export_id FROM exports").fetchall()}
    folders = [p.name for p in out.iterdir() if p.is_dir()] if out.exists() else []
    partial = sum(1 for name in folders if name.endswith(".partial"))
    unrecorded = sum(1 for name in folders if not name.endswith(".partial") and name not in recorded)
    return f"{partial} partial, {unrecorded} complete but unrecorded; {len(recorded)} recorded"


def report(trials, final, ref, ref_snap, got, mismatches, notes, kill_phase, server_up, differences,
           orphan_dirs, baseline) -> None:
    killed = [t for t in trials if t.attempt.killed]
    print("\n## Kills\n")
    print("| # | aimed at | hit | killed at (s into the run) | samples stored | verdicts stored | duplicates |")
    print("|---|---|---|---|---|---|---|")
    for t in trials:
        a = t.attempt
        hit = a.stage if a.killed else f"finished first (exit {a.returncode})"
        when = f"{a.killed_at:.1f}" if a.killed else f"{a.seconds:.1f} (no kill)"
        print(f"| {t.number} | {a.target} | {hit} | {when} | {t.samples} | {t.verdicts} | "
              f"{'; '.join(t.problems) or 'none'} |")
    aimed, hit = Counter(t.attempt.target for t in trials), Counter(t.attempt.stage for t in killed)
    print("\n## Kills per stage\n")
    print("| stage | aimed | hit |")
    print("|---|---|---|")
    for stage in STAGE_ORDER:
        if aimed[stage] or hit[stage]:
            print(f"| {stage} | {aimed[stage]} | {hit[stage]} |")
    print("\n## Figures\n")
    times = [t.attempt.killed_at for t in killed]
    rows = [
        ("kills (SIGKILL of the run's process group)", len(killed)),
        ("stages hit", f"{len(set(hit) - {'finishing'})} of {len(STAGE_ORDER) - 1}"
                       + (f" (+{hit['finishing']} after the last task)" if hit["finishing"] else "")),
        ("vLLM server start", f"{server_up:.0f} s"),
        ("reference run (uninterrupted)", f"{ref.seconds:.0f} s"),
        ("killed runs: time until the kill, mean / max", f"{sum(times) / max(len(times), 1):.1f} / "
                                                        f"{max(times, default=0):.1f} s"),
        ("final resumed run (to the end)", f"{final.seconds:.0f} s"),
        ("kills + resumes, wall time", f"{kill_phase:.0f} s"),
        ("`runs` rows by status", ", ".join(f"{status} {n}" for status, n in sorted(got.runs.items()))),
        ("export folders in out/", orphan_dirs),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    print("\n## Reference vs killed-and-resumed\n")
    print("| | reference | resumed |")
    print("|---|---|---|")
    print(f"| samples | {ref_snap.samples} | {got.samples} |")
    print(f"| duplicate sample ids / logical keys / content hashes | {ref_snap.duplicate_ids} / "
          f"{ref_snap.duplicate_keys} / {ref_snap.duplicate_contents} | {got.duplicate_ids} / {got.duplicate_keys} / "
          f"{got.duplicate_contents} |")
    same = sum(1 for s, h in ref_snap.sample_ids.items() if got.sample_ids.get(s) == h)
    print(f"| samples with the same text | {len(ref_snap.sample_ids)} | {same} |")
    for key in sorted(set(ref_snap.verdicts) | set(got.verdicts)):
        r, g = ref_snap.verdicts.get(key, (0, 0)), got.verdicts.get(key, (0, 0))
        print(f"| verdicts {key}: rows / passed | {r[0]} / {r[1]} | {g[0]} / {g[1]} |")
    print(f"| duplicate verdicts | {ref_snap.verdict_duplicates} | {got.verdict_duplicates} |")
    print(f"| judge verdicts from engine errors | {ref_snap.judge_engine_errors} | {got.judge_engine_errors} |")
    for name in ("kept", "selected", "exported_rows"):
        print(f"| {name} | {getattr(ref_snap, name)} | {getattr(got, name)} |")
    print("\nmismatches: " + ("none" if not mismatches else ""))
    for m in mismatches:
        print(f"  - {m}")
    for n in notes:
        print(f"  note: {n}")
    for d in differences:
        print(f"  text differs: {d}")
    if not differences:
        print("generation: every sample's text equals the reference's")
    if baseline is not None:
        (base_mismatches, base_notes), base_differences = baseline
        found = "; ".join(base_mismatches + base_notes) or "identical"
        print(f"\nbaseline (a second uninterrupted run vs the reference): {found}")
        for d in base_differences:
            print(f"  text differs: {d}")


if __name__ == "__main__":
    main()
