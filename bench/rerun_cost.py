"""Re-run cost: a first `curate run` vs an identical re-run on the same database.

    .venv/bin/python bench/rerun_cost.py [--config configs/default.yaml] [--limit 4] [--skip-cold]
                                         [--judge-as-configured]

Every stage does only the rows that lack its output under the current config hash, so the
re-run should make no engine call and cost a small fraction of the first run. Two settings:

  in-process   one Python process, the model already loaded and Prefect's temporary server
               already up (what a long-lived worker or `curate serve` sees): the two runs'
               wall times are the pipeline's own work.
  cold         two `curate run` processes, as a user types them: each pays Python imports and
               Prefect's temporary server; the first also loads the model, the re-run never
               does (the engine loads only when something is sent to it).

By default the config's judge rules are swapped for a copy of logical_completeness that judges
every sample (`applies_to: {after_stages: [], only_undecided: false}`): the 135M model's samples
rarely survive the cheap rules, and the first run should include judge calls to show the re-run
skips them too. --judge-as-configured keeps the config's judges.

Engine calls come from each run's counts (runs.counts -> engine_calls, counted by the engines
pipeline/engines/factory.py makes). Prints a table; writes nothing outside a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CURATE_HOME", str(ROOT / ".curate"))

from pipeline.runtime_env import apply_defaults  # noqa: E402

apply_defaults()


def _last_run(db: Path) -> dict:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        counts = con.sql("SELECT counts FROM runs ORDER BY started_at DESC LIMIT 1").fetchall()[0][0]
    return json.loads(counts)


def _row(label: str, seconds: float, counts: dict) -> str:
    calls = counts["engine_calls"]
    judged = sum(j.get("judged", 0) for j in counts.get("judges", {}).values())
    return (f"  {label:<34} {seconds:8.1f} {calls['requests']:9} {calls['completions']:12} {calls['model_loads']:6}"
            f" {counts['synthesize']['generated']:10} {judged:7}")


HEADER = (f"  {'':<34} {'wall s':>8} {'requests':>9} {'completions':>12} {'loads':>6} {'generated':>10}"
          f" {'judged':>7}")


def judge_everything(config_path: str, tmp: Path) -> str:
    """A copy of the config (pool paths made absolute) whose judge judges every sample."""
    import yaml

    from judges.loader import rule_path

    config = yaml.safe_load(Path(config_path).read_text())
    base = Path(config_path).resolve().parent
    for pool in config.get("pools", []):
        pool["path"] = str((base / pool["path"]).resolve())
    rule = yaml.safe_load(rule_path("logical_completeness").read_text())
    rule.update(name="judge_every_sample", applies_to={"after_stages": [], "only_undecided": False})
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "judge_every_sample.yaml").write_text(yaml.safe_dump(rule, sort_keys=False))
    config["judges"] = {**config.get("judges", {}), "rules": ["judge_every_sample"], "rules_dir": str(rules)}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def in_process(args, tmp: Path) -> list[str]:
    from prefect import flow
    from typer.testing import CliRunner

    from curate.cli import app
    from pipeline.config_loading import load_run_config
    from pipeline.engines.factory import make_engine

    @flow(name="warm-up", persist_result=False)
    def warm_up() -> None:  # starts Prefect's temporary server, outside the timed runs
        return None

    t = time.perf_counter()
    warm_up()
    prefect_s = time.perf_counter() - t
    t = time.perf_counter()
    make_engine(load_run_config(args.config).engine, announce=lambda _m: None).unwrap()
    load_s = time.perf_counter() - t

    db = tmp / "warm.duckdb"
    cmd = ["run", "--config", args.config, "--db", str(db), "--out", str(tmp / "out-warm"), "--limit", str(args.limit)]
    lines, seconds = [], []
    for label in ("first run", "identical re-run"):
        t = time.perf_counter()
        result = CliRunner().invoke(app, cmd, catch_exceptions=False)
        seconds.append(time.perf_counter() - t)
        if result.exit_code != 0:
            raise SystemExit(f"`curate {' '.join(cmd)}` failed:\n{result.output}")
        lines.append(_row(label, seconds[-1], _last_run(db)))
    return [f"in-process (model loaded in {load_s:.1f} s and Prefect server up in {prefect_s:.1f} s, before the runs)",
            HEADER, *lines, f"  re-run / first run: {seconds[1] / seconds[0]:.1%} of the wall time"]


def cold(args, tmp: Path) -> list[str]:
    db = tmp / "cold.duckdb"
    cmd = [sys.executable, "-m", "curate.cli", "run", "--config", args.config, "--db", str(db),
           "--out", str(tmp / "out-cold"), "--limit", str(args.limit)]
    lines, seconds = [], []
    for label in ("first run (loads the model)", "identical re-run"):
        t = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        seconds.append(time.perf_counter() - t)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        lines.append(_row(label, seconds[-1], _last_run(db)))
    return ["cold (`curate run` twice, a new process each)", HEADER, *lines,
            f"  re-run / first run: {seconds[1] / seconds[0]:.1%} of the wall time"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    parser.add_argument("--limit", type=int, default=4, help="questions per run")
    parser.add_argument("--skip-cold", action="store_true", help="only the in-process pair")
    parser.add_argument("--judge-as-configured", action="store_true",
                        help="keep the config's judge rules (default: one that judges every sample)")
    args = parser.parse_args()
    shown = Path(args.config).name + ("" if args.judge_as_configured else ", judging every sample")

    with tempfile.TemporaryDirectory(prefix="rerun-cost-") as name:
        tmp = Path(name)
        if not args.judge_as_configured:
            args.config = judge_everything(args.config, tmp)
        report = in_process(args, tmp)
        if not args.skip_cold:
            report += [""] + cold(args, tmp)
    print(f"\nre-run cost: {shown}, --limit {args.limit}, on {os.cpu_count()} CPU cores")
    print("\n".join(report))


if __name__ == "__main__":
    main()
