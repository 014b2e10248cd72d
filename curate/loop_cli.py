"""The misalignment loop on the command line (pipeline/misalignment/):

    curate badcases add --file cases.jsonl | --prompt P --output O [--expected E] [--tag T] [--model M]
    curate badcases list | check
    curate trace CASE                      candidates behind a case, cheapest method first, fused
    curate label SAMPLE... --dirty|--clean [--case CASE]
    curate rules list | preview RULE | enable RULE | disable RULE
"""

from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
DbOpt = typer.Option(Path("curate.duckdb"), "--db", help="DuckDB file.")
ConfigOpt = typer.Option(None, "--config", "-c", help="Run config YAML (rules, rebalance); default: configs/default.yaml.")
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of tables.")

badcases_app = typer.Typer(no_args_is_help=True, add_completion=False,
                           help="Bad model behaviours: add them, list them, check the newest export against them.")
rules_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="Preview a rule (SQL, Python or judge) before it counts; enable or disable it.")


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def guard(fn):
    """Bad input is one line naming the file, line and field (or the id), exit 2; no traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from pipeline.read_only_query import QueryRefused
        from pipeline.store import StoreLockedError
        from schemas.yaml_loading import ConfigError

        try:
            return fn(*args, **kwargs)
        except (ConfigError, StoreLockedError, FileNotFoundError, QueryRefused, ValueError) as exc:
            _fail(str(exc))
        except KeyError as exc:
            _fail(exc.args[0] if exc.args else str(exc))
    return wrapper


def _existing(db: Path) -> Path:
    if not db.exists():
        raise FileNotFoundError(f"{db} does not exist; run `curate run` first")
    return db


def _table(rows: list[dict], title: str | None = None) -> None:
    if not rows:
        out.print(f"{title}: none" if title else "none")
        return
    table = Table(title=title, title_justify="left")
    for column in rows[0]:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*["" if v is None else str(v)[:120] for v in row.values()])
    out.print(table)


# ------------------------------------------------------------------------------ bad cases

@badcases_app.command("add")
@guard
def badcases_add(file: Optional[Path] = typer.Option(None, "--file", "-f", help="A JSONL of cases (prompt, bad_output, expected, tags, model)."),
                 prompt: Optional[str] = typer.Option(None, "--prompt", help="What the model was asked."),
                 output: Optional[str] = typer.Option(None, "--output", help="What it answered (the bad behaviour)."),
                 expected: Optional[str] = typer.Option(None, "--expected", help="A reference answer, or what a good answer does."),
                 tag: list[str] = typer.Option([], "--tag", help="A tag (repeatable): loop, wrong-answer, ..."),
                 model: Optional[str] = typer.Option(None, "--model", help="The model or checkpoint it came from."),
                 db: Path = DbOpt) -> None:
    """Add bad cases from a JSONL file or one from the options (adding one again changes nothing)."""
    from pipeline.misalignment.cases import add_cases, read_cases
    from pipeline.store import Store
    from schemas.bad_case import BadCase

    if file and (prompt or output):
        raise ValueError("give --file or --prompt/--output, not both")
    if file:
        cases = read_cases(file)
    elif prompt and output:
        cases = [(BadCase(prompt=prompt, bad_output=output, expected=expected, tags=tag, model=model), "cli")]
    else:
        raise ValueError("give --file cases.jsonl, or both --prompt and --output")
    with Store(_existing(db)) as store:
        ids = add_cases(store, cases)
    for case_id, (case, _) in zip(ids, cases):
        out.print(f"{case_id}  {case.prompt[:70]!r}", highlight=False)
    console.print(f"{len(ids)} case(s); trace one with: curate trace {ids[0]} --db {db}")


@badcases_app.command("list")
@guard
def badcases_list(db: Path = DbOpt, as_json: bool = JsonOpt) -> None:
    """The stored bad cases, with how many candidates were traced and labelled dirty."""
    from pipeline.store import Store

    with Store(_existing(db), read_only=True) as store:
        rows = store.frame("""
            SELECT c.case_id, left(c.prompt, 60) AS prompt, left(c.bad_output, 60) AS bad_output,
                   array_to_string(c.tags, ',') AS tags, c.model,
                   (SELECT count(DISTINCT trace_id) FROM trace_candidates t WHERE t.case_id = c.case_id) AS traces,
                   (SELECT count(*) FROM current_labels l WHERE l.case_id = c.case_id AND l.label = 'dirty') AS dirty
            FROM bad_cases c ORDER BY c.created_at, c.case_id""").to_dicts()
    print(json.dumps(rows, default=str, indent=1)) if as_json else _table(rows, "bad cases")


@badcases_app.command("check")
@guard
def badcases_check(config: Optional[Path] = ConfigOpt, db: Path = DbOpt, as_json: bool = JsonOpt) -> None:
    """Per case: shipped samples labelled dirty, or failing the case's signature rules, in the newest export."""
    from pipeline.config_loading import load_run_config
    from pipeline.misalignment.check import check_cases
    from pipeline.store import Store

    with Store(_existing(db)) as store:
        export_id, rows = check_cases(store, load_run_config(config))
    if as_json:
        print(json.dumps({"export_id": export_id, "cases": rows}, indent=1))
    else:
        _table([{**r, "dirty_shipped": len(r["dirty_shipped"]), "signature_shipped": len(r["signature_shipped"]),
                 "signature": ", ".join(r["signature"])} for r in rows], f"bad cases against export {export_id}")
    if any(r["status"] == "open" for r in rows):
        raise typer.Exit(1)


# ------------------------------------------------------------------------------ trace

def trace(case: str = typer.Argument(..., metavar="CASE", help="A bad case id (or a unique prefix)."),
          top: int = typer.Option(20, "--top", "-k", help="Candidates to show (50 are stored per method)."),
          config: Optional[Path] = ConfigOpt, db: Path = DbOpt, as_json: bool = JsonOpt) -> None:
    """The stored samples behind a bad case: defect signature, BM25, embeddings, fused (trace_candidates)."""
    from curate.progress import RichProgress
    from pipeline.config_loading import load_run_config
    from pipeline.misalignment.cases import load_case
    from pipeline.misalignment.trace import trace_case
    from pipeline.store import Store

    with Store(_existing(db)) as store, RichProgress(console) as progress:
        case_id = load_case(store, case).case_id
        found = trace_case(store, case_id, config=load_run_config(config), progress=progress)
    rows = found.head(top).to_dicts()
    if as_json:
        print(json.dumps(rows, default=str, indent=1))
        return
    ranks = [c for c in found.columns if c.endswith("_rank")]
    _table([{"rank": r["rank"], "sample_id": r["sample_id"], **{c.removesuffix("_rank"): r[c] for c in ranks},
             "kept": "yes" if r.get("kept") else "no", "exports": len(r.get("exports") or []),
             "why": r["detail"]} for r in rows],
           f"trace {rows[0]['trace_id'] if rows else ''}: candidates behind case {case_id} "
           f"(label them: curate label SAMPLE --dirty --case {case_id[:8]})")


# ------------------------------------------------------------------------------ labels

def label(sample_ids: list[str] = typer.Argument(None, metavar="SAMPLE...", help="Sample ids (or unique prefixes)."),
          dirty: bool = typer.Option(False, "--dirty", help="The samples taught the bad behaviour."),
          clean: bool = typer.Option(False, "--clean", help="The samples are fine."),
          case: Optional[str] = typer.Option(None, "--case", help="The bad case they were traced from."),
          prelabel: Optional[str] = typer.Option(None, "--prelabel", metavar="JUDGE_RULE",
                                                 help="Pre-label the case's top traced candidates with this judge rule "
                                                      "(failing: dirty, passing: clean; your own labels outrank it)."),
          top: int = typer.Option(20, "--top", help="With --prelabel: how many candidates (fused rank)."),
          note: Optional[str] = typer.Option(None, "--note"), config: Optional[Path] = ConfigOpt,
          db: Path = DbOpt) -> None:
    """Label traced candidates dirty or clean (a row per label; the newest counts), or pre-label a
    case's candidates with a judge rule (--prelabel RULE --case CASE)."""
    from pipeline.misalignment.cases import load_case
    from pipeline.misalignment.labels import add_labels
    from pipeline.store import Store

    if prelabel:
        return _prelabel(prelabel, case, top, config, db)
    if dirty == clean:
        raise ValueError("give exactly one of --dirty or --clean")
    if not sample_ids:
        raise ValueError("name the samples to label (or use --prelabel RULE --case CASE)")
    with Store(_existing(db)) as store:
        case_id = load_case(store, case).case_id if case else None
        n = add_labels(store, sample_ids, "dirty" if dirty else "clean", case_id=case_id, note=note)
    console.print(f"{n} sample(s) labelled {'dirty' if dirty else 'clean'}" + (f" for case {case_id}" if case_id else ""))


def _prelabel(rule_ref: str, case: Optional[str], top: int, config: Optional[Path], db: Path) -> None:
    from curate.progress import RichProgress
    from pipeline.config_loading import load_run_config
    from pipeline.misalignment.cases import load_case
    from pipeline.misalignment.judge_preview import prelabel
    from pipeline.store import Store

    if not case:
        raise ValueError("--prelabel needs --case CASE (it labels that case's traced candidates)")
    cfg = load_run_config(config)
    from judges.loader import load_rule

    rule = load_rule(rule_ref, cfg.judges.rules_dir)
    engine = _judge_engine(rule, cfg)
    with Store(_existing(db)) as store, RichProgress(console) as progress:
        case_id = load_case(store, case).case_id
        found = prelabel(store, rule, engine, case_id, top=top, batch_size=cfg.judges.batch_size,
                         max_retries=cfg.judges.max_parse_retries, progress=progress)
    _table(found.with_columns(found["reason"].str.slice(0, 80)).to_dicts(),
           f"pre-labels by judge:{rule.name}@{rule.version} for case {case_id} (override: curate label SAMPLE --clean)")


# ------------------------------------------------------------------------------ rules

def _resolve(rule: str, config: Optional[Path]):
    from pipeline.config_loading import load_run_config
    from pipeline.misalignment.loop_rules import resolve

    cfg = load_run_config(config)
    return resolve(rule, cfg), cfg


@rules_app.command("preview")
@guard
def rules_preview(rule: str = typer.Argument(..., metavar="RULE", help="A SQL rule YAML (path or name in filters/sql/), a Python rule's name, or a judge rule."),
                  limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Preview on the first N samples only (a judge rule: default 20)."),
                  samples: list[str] = typer.Option([], "--sample", "-s", help="A judge rule: judge this sample (repeatable)."),
                  config: Optional[Path] = ConfigOpt, db: Path = DbOpt, as_json: bool = JsonOpt) -> None:
    """What RULE would remove, before it counts (nothing it writes enters sample_status or exports)."""
    from curate.progress import RichProgress
    from pipeline.misalignment.preview import preview

    loop_rule, cfg = _resolve(rule, config)
    engine = _judge_engine(loop_rule.judge, cfg) if loop_rule.kind == "judge" else None
    with RichProgress(console) as progress:
        report = preview(_existing(db), loop_rule, cfg, limit=limit, sample_ids=_full_ids(db, samples) or None,
                         engine=engine, progress=progress)
    if as_json:
        print(json.dumps(report.to_dict(), default=str, indent=1))
        return
    _print_preview(report, rule)


def _judge_engine(rule, cfg):
    """The engine a judge rule runs on in a run: its own, else the run's."""
    from pipeline.engines.factory import make_engine

    return make_engine(rule.engine or cfg.engine, announce=lambda m: console.print(m, markup=False))


def _full_ids(db: Path, prefixes: list[str]) -> list[str]:
    from pipeline.misalignment.labels import sample_ids_of
    from pipeline.store import Store

    if not prefixes:
        return []
    with Store(_existing(db), read_only=True) as store:
        return sample_ids_of(store, prefixes)


def _print_preview(r, ref: str) -> None:
    out.print(f"[bold]{r.rule}[/bold] ({r.kind} rule v{r.version}, config {r.config_hash}): "
              f"{r.hits} of {r.evaluated} samples hit ({r.hit_rate:.1%})")
    for column, groups in r.by.items():
        _table(groups[:10], f"hits by {column}")
    lab = r.labels
    out.print(f"labels: {lab['dirty']} dirty, {lab['clean']} clean; precision {lab['precision']}, "
              f"recall {lab['recall']} (tp {lab['true_positives']}, fp {lab['false_positives']}, fn {lab['false_negatives']})")
    out.print(f"bad cases: {r.cases}")
    ov = r.overlap
    out.print(f"removes {ov['only_this_rule_removes']} samples no other rule drops ({ov['tokens_removed']} completion tokens)")
    _table(ov["already_dropped_by"], "hits already dropped by")
    _table(r.examples, f"{len(r.examples)} hits")
    _table(r.near_misses, f"{len(r.near_misses)} near misses")
    shift = r.export_shift
    out.print(f"next export now:       {shift['now']}")
    out.print(f"next export with rule: {shift['with_rule']}")
    out.print(f"enable it with: curate rules enable {ref}")


@rules_app.command("enable")
@guard
def rules_enable(rule: str = typer.Argument(..., metavar="RULE"), config: Optional[Path] = ConfigOpt,
                 db: Path = DbOpt) -> None:
    """RULE counts from now on: its verdicts are backfilled over the stored samples."""
    from pipeline.misalignment.enable import enable

    loop_rule, _ = _resolve(rule, config)
    written = enable(_existing(db), loop_rule, run_id=f"enable-{uuid.uuid4().hex[:8]}")
    console.print(f"{loop_rule.name} enabled ({loop_rule.kind}); {written} verdicts written"
                  + ("; judge it with `curate judges backfill " + loop_rule.name + "`" if loop_rule.kind == "judge" else ""))
    if loop_rule.kind == "cheap":
        console.print("  new samples get it where the run config runs it (not listed in filters.disabled)")


@rules_app.command("disable")
@guard
def rules_disable(rule: str = typer.Argument(..., metavar="RULE"), config: Optional[Path] = ConfigOpt,
                  db: Path = DbOpt) -> None:
    """RULE stops counting; its verdicts stay stored (enable it again to make them count)."""
    from pipeline.misalignment.enable import disable

    loop_rule, _ = _resolve(rule, config)
    disable(_existing(db), loop_rule)
    console.print(f"{loop_rule.name} disabled: its verdicts no longer count (the next export applies it)")


@rules_app.command("list")
@guard
def rules_list(db: Path = DbOpt) -> None:
    """Rules switched on or off in this store, and the SQL rules shipped in filters/sql/."""
    from pipeline.misalignment.sql_rules import BUILT_IN_DIR
    from pipeline.store import Store

    with Store(_existing(db), read_only=True) as store:
        rows = store.frame("SELECT rule, kind, enabled, source, changed_at FROM rule_states ORDER BY rule").to_dicts()
    _table(rows, "rule states (a rule not listed counts as configured)")
    shipped = [{"rule": p.stem, "file": str(p)} for p in sorted(BUILT_IN_DIR.glob("*.yaml"))]
    _table(shipped, "SQL rules shipped in filters/sql/")
