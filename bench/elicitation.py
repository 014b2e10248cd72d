"""How to get reasoning out of a non-reasoning instruct model: forced <think> budget vs a prompted
"reason inside <think>, then answer" layout, on the same questions, through the real pipeline.

    .venv/bin/python bench/elicitation.py [--limit 12] [--n 2] [--reasoning 512] [--answer 256]
                                          [--model qwen2.5-coder-1.5b-instruct] [--modes forced,native]

Each mode is one `curate run` (judges off, so only synthesis, the cheap rules and verification
cost time) on its own database; the same questions and seeds. Prints per mode: wall time, output
tokens, who closed the reasoning, truncation, each cheap rule's failures, format compliance,
answers verified correct, and samples kept by every rule.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parent.parent


def run_mode(mode: str, args, work: Path) -> tuple[Path, float]:
    config = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    for pool in config["pools"]:
        pool["path"] = str((ROOT / "configs" / pool["path"]).resolve())
    config["limit"] = args.limit
    config["engine"] = {**config.get("engine", {}), "model": args.model}
    budget = {"reasoning_max_tokens": args.reasoning, "answer_max_tokens": args.answer}
    config["synthesis"] = {**config.get("synthesis", {}), "n": args.n, "think_mode": mode, **budget}
    config["judges"] = {"rules": []}
    path = work / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    db = work / f"{mode}.duckdb"
    started = time.monotonic()
    subprocess.run([str(ROOT / ".venv/bin/curate"), "run", "--config", str(path), "--db", str(db),
                    "--out", str(work / f"out-{mode}")], check=True, cwd=ROOT)
    return db, time.monotonic() - started


def report(mode: str, db: Path, wall: float) -> None:
    con = duckdb.connect(str(db), read_only=True)
    q = lambda sql: con.sql(sql).fetchall()  # noqa: E731
    n, tokens, closed_model, cut = q("""SELECT count(*), sum(completion_tokens),
        count(*) FILTER (WHERE think_closed_by = 'model'),
        count(*) FILTER (WHERE reasoning_finish = 'length' OR finish_reason = 'length') FROM samples""")[0]
    print(f"\n== {mode}: {n} samples, {wall:.0f} s wall, {tokens} output tokens; reasoning closed by the model "
          f"{closed_model}/{n}; cut at a token limit {cut}/{n}")
    for rule, checked, failed in q("""SELECT rule, count(*), count(*) FILTER (WHERE NOT passed) FROM latest_verdicts
                                      GROUP BY rule ORDER BY rule"""):
        print(f"  {rule:<20} failed {failed:>3}/{checked}")
    kept = q("SELECT count(*) FILTER (WHERE kept), count(*) FROM sample_status")[0]
    print(f"  kept by every rule: {kept[0]}/{kept[1]}")
    for domain, k, t in q("""SELECT domain, count(*) FILTER (WHERE kept), count(*) FROM sample_status
                             GROUP BY domain ORDER BY domain"""):
        print(f"    {domain:<8} kept {k}/{t}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--reasoning", type=int, default=512)
    ap.add_argument("--answer", type=int, default=256)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--modes", default="forced,native")
    ap.add_argument("--work", default=str(ROOT / ".curate" / "bench" / "elicitation"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for mode in args.modes.split(","):
        for stale in work.glob(f"{mode}.duckdb*"):
            stale.unlink()
        results.append((mode, *run_mode(mode, args, work)))
    for mode, db, wall in results:
        report(mode, db, wall)


if __name__ == "__main__":
    sys.exit(main())
