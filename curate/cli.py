"""The `curate` command line: run the flow, query the store."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from pipeline.runtime_env import apply_defaults

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Curate chain-of-thought training data: synthesize, clean, judge, rebalance, export.")
console = Console(stderr=True)

from curate.judges_cli import app as judges_app  # noqa: E402

from curate.models_cli import app as models_app  # noqa: E402

app.add_typer(judges_app, name="judges")
app.add_typer(models_app, name="models")

from curate.loop_cli import badcases_app, guard, label, rules_app, trace  # noqa: E402

app.add_typer(badcases_app, name="badcases")
app.add_typer(rules_app, name="rules")
app.command("label")(guard(label))
app.command("trace")(guard(trace))

from curate.export_cli import export  # noqa: E402
from curate.report_cli import report  # noqa: E402

app.command("report")(report)
app.command("export")(export)



@app.command()
def run(
    questions: Optional[list[str]] = typer.Option(None, "--questions", "-q", help="Question pools (JSONL, JSON, Parquet, HF datasets folder); repeat the flag or use a glob ('pools/*.jsonl'); default: the config's pools."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Run config YAML (default: configs/default.yaml)."),
    db: Path = typer.Option(Path("curate.duckdb"), "--db", help="DuckDB file holding every sample and verdict."),
    out: Path = typer.Option(Path("out"), "--out", help="Folder for exported shard sets."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Questions for this run, spread over domains."),
    skip_unchanged: bool = typer.Option(False, "--skip-unchanged", help="Write no new shard set when the selection equals the newest export's."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Override engine.model: a shipped alias (qwen2.5-coder-1.5b-instruct, the default; smollm2-135m-instruct, the quick demo) or an HF model folder."),
) -> None:
    """Run the whole pipeline (Prefect flow `curate`) and export a shard set."""
    _prepare()
    from curate.progress import RichProgress
    from flows.curate_flow import curate, progress_var, say_var
    from pipeline.store import StoreLockedError
    from schemas.yaml_loading import ConfigError

    params = _params(config=config, questions=_expand(questions) if questions else None, db=db, out=out,
                     limit=limit, skip_unchanged=skip_unchanged, model=model)
    started = time.monotonic()
    say_var.set(lambda msg: console.print(msg, markup=False, highlight=False))
    try:
        _check_pools(params)
        with RichProgress(console) as progress:
            progress_var.set(progress)
            counts = curate(params=params)
    except (ConfigError, StoreLockedError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    elapsed = time.monotonic() - started
    _summary(counts, db, out, elapsed)


def _check_pools(params) -> None:
    """Refuse a run none of whose pools can be read, with one line per pool, before Prefect starts
    (an error raised inside the flow reaches the terminal with Prefect's traceback). When some pools
    open, the run goes on and the ingest stage reports each one that does not."""
    from rich.markup import escape

    from pipeline.config_loading import load_run_config
    from pipeline.pools import pool_problem

    pools = load_run_config(params.config_path, params.questions, params.limit, params.model).pools
    problems = [p for p in map(pool_problem, pools) if p]
    if pools and len(problems) == len(pools):
        for problem in problems:
            console.print(f"[red]error:[/red] cannot read {escape(problem)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)


def _prepare() -> None:
    apply_defaults()
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"vllm\..*")


# Flow parameter -> the CLI option that sets it (for error messages).
_OPTIONS = {"config_path": "--config", "questions": "--questions", "db": "--db", "out": "--out", "limit": "--limit",
            "model": "--model"}


def _params(*, config: Optional[Path], absolute: bool = False, **values):
    """The `curate` flow's parameters, validated here so a bad option fails before any run starts."""
    from pydantic import ValidationError

    from flows.params import CurateParams

    if absolute:  # a served deployment runs later, maybe elsewhere: pin the paths
        values |= {k: str(Path(values[k]).resolve()) for k in ("db", "out")}
        from pipeline.config_loading import DEFAULT_CONFIG

        config = (config or DEFAULT_CONFIG).resolve()
        if values.get("questions"):
            values["questions"] = [str(Path(q).resolve()) for q in values["questions"]]
    values = {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}
    try:
        return CurateParams(config_path=str(config) if config else None, **values)
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            console.print(f"[red]error:[/red] {_OPTIONS.get(field, field)}: {error['msg']}", highlight=False)
        raise typer.Exit(2) from None


def _expand(patterns: list[str]) -> list[str]:
    """Globs expand to matching files (sorted); a plain path is kept even if missing, so the
    run reports it (quarantine: file not found) instead of dropping it silently."""
    import glob

    paths: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            console.print(f"[red]error:[/red] --questions {pattern!r} matches no file")
            raise typer.Exit(2)
        paths.extend(matches)
    return paths


def _summary(counts: dict, db: Path, out: Path, elapsed: float) -> None:
    s, e, q = counts["synthesize"], counts["export"], counts["screen"]
    console.print(f"\nrun {counts['run_id']} finished in {elapsed:.0f} s")
    console.print(f"  questions: {q['decontam_checked']} checked against benchmarks ({q['contaminated']} contaminated), "
                  f"{q['duplicates']} duplicates set aside")
    if counts["ingest"].get("unreadable_pools"):
        n = counts["ingest"]["unreadable_pools"]
        console.print(f"  pools: {n} file{'s' * (n > 1)} could not be read (the [error] lines above)",
                      markup=False, highlight=False)
    console.print(f"  samples: {s['generated']} generated, {s['already_done']} already in {db}, {s['errors']} errors")
    for rule, c in counts["filters"].items():
        console.print(f"  filter {rule:<17} checked {c['checked']:>5}  failed {c['failed']:>5}")
    v = counts["verify"]
    console.print(f"  verify answer_match checked {v['checked']:>5}  correct {v['correct']:>5}")
    console.print(f"  verify code_tests   checked {v['code_checked']:>5}  passed  {v['code_passed']:>5}"
                  + (f"  (sandbox errors, retried next run: {v['code_errors']})" if v["code_errors"] else ""))
    for rule, j in counts["judges"].items():
        if j["refused"]:
            console.print(f"  judge {rule} v{j['version']}: not run ({j['refused']})")
            continue
        line = (f"  judge {rule} v{j['version']}: judged {j['judged']} of {j['eligible']} due, kept {j['kept']}, "
                f"errors {j['errors']}, tokens {j['prompt_tokens']}+{j['completion_tokens']}")
        if j["skipped_budget"]:
            line += f", {j['skipped_budget']} left by the token budget (judge_pending)"
        console.print(line)
    for rule, c in counts.get("sql_rules", {}).items():  # SQL rules enabled with `curate rules enable`
        console.print(f"  sql rule {rule}: checked {c['checked']}, matching (failing) {c['matching']}")
    seconds = counts.get("seconds")
    if seconds:
        console.print("  seconds: " + ", ".join(f"{stage} {s:.0f}" for stage, s in seconds.items()))
    calls = counts.get("engine_calls")
    if calls is not None:  # a re-run of finished work shows 0 requests and 0 model loads
        console.print(f"  engine calls: {calls['requests']} requests ({calls['completions']} completions) in "
                      f"{calls['batches']} batches, {calls['model_loads']} model loads")
    st = counts.get("styles")
    if st and st["samples"]:
        console.print(f"  styles: {st['compliance']:.0%} of {st['samples']} samples wrote the requested format"
                      + (f"; overfit alarm: {'; '.join(st['alarms'])}" if st["alarms"] else "")
                      + " (SELECT * FROM style_summary)")
    if e.get("status", "").startswith("unchanged"):
        console.print(f"  export {e['status']} (no new shard set)")
    elif e["rows"]:
        console.print(f"  exported {e['rows']} samples {e['by_domain']} -> {out / e['export_id']}")
    else:
        console.print(f"  nothing kept, nothing exported (manifest only: {out / e['export_id']}); "
                      "the failed_rules column of sample_status says why")
    for short in e.get("shortfall", []):
        more = short["questions_to_synthesize"]
        console.print(f"  shortfall {short['domain']}: {short['missing']} more kept sample(s) needed"
                      + (f" (about {more} more questions)" if more else " (none kept yet)"))
    if counts.get("report"):
        console.print(f"  quality report: {counts['report']['path']}", markup=False, highlight=False, soft_wrap=True)
    console.print(f'  why in or out: curate query --db {db} "SELECT * FROM sample_status LIMIT 10"')


@app.command()
def serve(
    cron: str = typer.Option(..., "--cron", help="When to run, as a cron expression: '0 * * * *' hourly, '0 3 * * *' daily at 03:00."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Run config YAML (default: configs/default.yaml); its pools are the question source."),
    questions: Optional[list[str]] = typer.Option(None, "--questions", "-q", help="Question pools instead of the config's (re-read on every run)."),
    db: Path = typer.Option(Path("curate.duckdb"), "--db", help="DuckDB file holding every sample and verdict."),
    out: Path = typer.Option(Path("out"), "--out", help="Folder for exported shard sets."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Questions per run, spread over domains."),
    name: str = typer.Option("scheduled", "--name", help="Deployment name (shown in the Prefect UI as curate/NAME)."),
    timezone: Optional[str] = typer.Option(None, "--timezone", help="Time zone of the cron expression, e.g. Europe/Berlin (default UTC)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the deployment (schedule, parameters) as JSON and exit."),
) -> None:
    """Serve the full `curate` flow on a cron schedule: each run writes a new shard set, or none when
    its selection equals the newest export's. Runs go to the Prefect API at PREFECT_API_URL."""
    _prepare()
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    from flows.deployments import curate_deployment, describe, serve_deployments
    from pipeline.config_loading import load_run_config
    from schemas.yaml_loading import ConfigError

    params = _params(config=config, questions=questions, db=db, out=out, limit=limit, absolute=True)
    try:
        load_run_config(params.config_path, params.questions, params.limit, params.model)  # fail now
        deployment = curate_deployment(params, cron, name=name, timezone=timezone)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if dry_run:
        sys.stdout.write(json.dumps(describe(deployment), indent=1) + "\n")
        return
    if not PREFECT_API_URL.value():
        console.print("[yellow]warning:[/yellow] PREFECT_API_URL is not set: serving against a temporary local "
                      "Prefect server that stops with this command (schedules and run history are not kept). "
                      "Start `prefect server start` and export PREFECT_API_URL=http://127.0.0.1:4200/api.")
    console.print(f"serving curate/{name} on {cron!r} ({timezone or 'UTC'}): database {params.db}, shard sets under "
                  f"{params.out}; Ctrl+C stops\n  a run now: prefect deployment run curate/{name}\n  runs, logs and "
                  f"counts artifacts: {PREFECT_UI_URL.value() or 'the Prefect UI'}", highlight=False, soft_wrap=True)
    serve_deployments(deployment)


@app.command()
def query(
    sql: str = typer.Argument(..., help="One SELECT to run (read-only; nothing outside the database is readable)."),
    db: Path = typer.Option(Path("curate.duckdb"), "--db", help="DuckDB file."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
    max_rows: int = typer.Option(10_000, "--max-rows", min=1, help="Rows returned at most."),
    timeout: float = typer.Option(60, "--timeout", min=0.1, help="Seconds before the query is stopped."),
) -> None:
    """Run one read-only SELECT against the store (tables: runs, questions, quarantine, samples,
    verdicts, question_verdicts, judge_skips, judge_evals, question_difficulty, exports,
    selections, shards; views: sample_status, latest_verdicts, judge_pending, report_*). Other files,
    ATTACH, COPY, SET, PRAGMA and writes are refused (pipeline/read_only_query.py)."""
    import duckdb

    from pipeline.read_only_query import QueryRefused, run_query

    if fmt not in ("table", "csv", "json"):
        console.print(f"[red]error:[/red] --format must be table, csv or json (got {fmt!r})")
        raise typer.Exit(2)
    try:
        frame, truncated = run_query(db, sql, max_rows=max_rows, timeout_s=timeout)
    except QueryRefused as exc:
        console.print(f"[red]refused:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except duckdb.Error as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    _print_frame(frame, fmt)
    if truncated:
        console.print(f"[yellow]only the first {max_rows} rows[/yellow] (--max-rows)")


def _print_frame(frame, fmt: str) -> None:
    if fmt == "csv":
        nested = [c for c, t in frame.schema.items() if t.is_nested()]
        import polars as pl

        frame = frame.with_columns([pl.col(c).map_elements(lambda v: json.dumps(v.to_list() if hasattr(v, "to_list") else v, default=str),
                                                           return_dtype=pl.String) for c in nested])
        sys.stdout.write(frame.write_csv())
    elif fmt == "json":
        sys.stdout.write(json.dumps(frame.to_dicts(), default=str, ensure_ascii=False, indent=1) + "\n")
    else:  # fitted to the terminal: a table, or one block per row when the columns cannot fit
        from curate.table_output import print_frame

        print_frame(frame, Console())
        console.print(f"{frame.height} rows")


from curate.view_cli import view  # noqa: E402

app.command("view")(view)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
