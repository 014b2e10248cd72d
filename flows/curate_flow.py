"""The `curate` Prefect flow: ingest -> screen -> classify domains -> synthesize -> filter -> verify -> judge -> style metrics
-> difficulty -> rebalance + export. Stages live in pipeline/; this file only wires them."""

from __future__ import annotations

import contextvars
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from filters.decontam import AnswerContamination
from filters.registry import cheap_filters
from judges.loader import load_rule
from pipeline.config_loading import load_run_config
from pipeline.engines.factory import make_engine
from pipeline.progress import NoProgress, Progress
from pipeline.run_lock import run_lock
from pipeline.run_record import recorded_run
from pipeline.run_report import counts_markdown
from pipeline.stages.difficulty import score_difficulty
from pipeline.stages.domains import classify_run_questions
from pipeline.stages.filter import run_filters
from pipeline.stages.ingest import ingest, select_questions
from pipeline.stages.screen import benchmark_index, screen_questions, usable
from pipeline.stages.judge import TokenBudget, run_judge
from pipeline.stages.publish import select_and_export
from pipeline.stages.style_metrics import record_style_metrics
from pipeline.stages.synthesize import gen_config_hash, synthesize
from pipeline.stages.verify import run_verify
from pipeline.store import Store

# The CLI sets these; flow parameters must stay JSON (Prefect records them), so live objects
# such as the progress display and the log function travel in context variables.
progress_var: contextvars.ContextVar[Progress] = contextvars.ContextVar("progress", default=NoProgress())
say_var: contextvars.ContextVar = contextvars.ContextVar("say", default=print)

# Stage tasks write to DuckDB themselves: nothing for Prefect to cache or persist. Each task
# opens its own connection from the path (Prefect keeps task parameters alive, and a live
# connection object held past shutdown makes DuckDB's bindings report leaks).
_task = dict(cache_policy=NONE, persist_result=False)


@task(name="ingest", **_task)
def ingest_task(db, config, run_id):
    with Store(db) as store:
        return ingest(store, config, run_id)


@task(name="screen-questions", **_task)
def screen_task(db, config, run_id, pool):
    index = benchmark_index(config, None)
    with Store(db) as store:
        report = screen_questions(store, config, run_id, pool, index)
        return report, usable(store, pool), index


@task(name="classify-domains", **_task)
def domains_task(db, config, run_id, question_ids):
    with Store(db) as store:
        return classify_run_questions(store, config.domains, run_id, question_ids, progress_var.get())


@task(name="synthesize", retries=1, **_task)
def synthesize_task(db, engine, config, run_id, question_ids):
    with Store(db) as store:
        return synthesize(store, engine, config.synthesis, run_id, question_ids, progress_var.get())


@task(name="rule-filters", **_task)
def filter_task(db, config, run_id, index):
    with Store(db) as store:
        rules = cheap_filters(config.filters, config.synthesis.custom_patterns())
        counts = run_filters(store, rules, run_id, progress=progress_var.get())
        if config.decontamination.check_answers:
            counts += run_filters(store, [AnswerContamination(index)], run_id, stage="decontam",
                                  progress=progress_var.get())
        return counts


@task(name="verify", **_task)
def verify_task(db, run_id):
    with Store(db) as store:
        return run_verify(store, run_id, progress=progress_var.get())


@task(name="judge", **_task)
def judge_task(db, engine, config, run_id, rule_name, tokens_left, limit=None):
    """One judge rule; `tokens_left` is what the run's token budget still allows (None: no limit)."""
    rule = load_rule(rule_name, config.judges.rules_dir)
    if rule.engine is not None:  # the rule names its own judge model
        engine = make_engine(rule.engine, announce=say_var.get())
    with Store(db) as store:
        return run_judge(store, rule, engine, run_id, batch_size=config.judges.batch_size,
                         max_retries=config.judges.max_parse_retries, budget=TokenBudget(tokens_left),
                         limit=limit, progress=progress_var.get())


def _judge_all(db, engine, config, run_id) -> dict:
    """Judge rules in configured order, sharing the run's token budget."""
    say, left, reports = say_var.get(), config.judges.token_budget, {}
    for name in config.judges.rules:
        report = judge_task(db, engine, config, run_id, name, left)
        if report.refused:
            say(f"[judge] {name} not run: {report.refused}")
        if report.skipped_budget:
            say(f"[judge] {name}: token budget reached, {report.skipped_budget} samples left for a later run "
                "(SELECT * FROM judge_pending)")
        if left is not None:
            left = max(0, left - report.prompt_tokens - report.completion_tokens)
        reports[name] = vars(report)
    return reports


@task(name="style-metrics", **_task)
def style_metrics_task(db, config, run_id, question_ids, model):
    with Store(db) as store:
        return record_style_metrics(store, config.synthesis, run_id, question_ids,
                                    gen_config_hash(config.synthesis, model))


@task(name="difficulty", **_task)
def difficulty_task(db, engine, config, run_id, question_ids):
    with Store(db) as store:
        return score_difficulty(store, run_id, question_ids, config=config.difficulty, engine=engine,
                                rules_dir=config.judges.rules_dir, progress=progress_var.get())


@task(name="rebalance-export", **_task)
def export_task(db, config, run_id, out_dir):
    with Store(db) as store:
        return select_and_export(store, config, run_id, Path(out_dir))


@flow(name="curate", persist_result=False)
def curate(config_path: str | None = None, questions: list[str] | None = None, db: str = "curate.duckdb",
           out: str = "out", limit: int | None = None) -> dict:
    with run_lock(db):
        return _curate(config_path, questions, db, out, limit)


def _curate(config_path, questions, db, out, limit) -> dict:
    say = say_var.get()
    config = load_run_config(config_path, questions, limit)
    with recorded_run(db, config.model_dump(mode="json"), config.config_hash()) as (run_id, counts):
        report = ingest_task(db, config, run_id)
        counts["ingest"] = {"read": report.read, "new": report.new_questions, "quarantined": report.quarantined}
        for message in report.quarantine_messages[:10]:
            say(f"[quarantine] {message}")
        if report.quarantined > 10:
            say(f"[quarantine] ... {report.quarantined - 10} more (SELECT * FROM quarantine)")
        screen, pool, index = screen_task(db, config, run_id, report.pool)
        counts["screen"] = vars(screen)
        question_ids = select_questions(pool, config.limit, config.selection_seed)
        say(f"{report.read} questions read ({report.new_questions} new, {report.quarantined} quarantined); "
            f"{report.pool.height - pool.height} set aside by decontamination or dedup; "
            f"{len(question_ids)} selected for this run")
        counts["domains"] = domains_task(db, config, run_id, question_ids)
        if counts["domains"]["knn"]:
            say(f"[domains] {counts['domains']['knn']} questions classified by kNN, {counts['domains']['adopted']} "
                "adopted (SELECT * FROM question_domains WHERE method = 'knn')")
        engine = make_engine(config.engine, announce=say)
        synth = synthesize_task(db, engine, config, run_id, question_ids)
        counts["synthesize"] = vars(synth)
        counts["filters"] = {c.rule: {"checked": c.checked, "failed": c.failed}
                             for c in filter_task(db, config, run_id, index)}
        counts["verify"] = vars(verify_task(db, run_id))
        counts["judges"] = _judge_all(db, engine, config, run_id)
        styles = style_metrics_task(db, config, run_id, question_ids, engine.model_name)
        counts["styles"] = vars(styles)
        for alarm in styles.alarms:
            say(f"[styles] overfit alarm: {alarm} (SELECT * FROM style_alarms)")
        counts["difficulty"] = vars(difficulty_task(db, engine, config, run_id, question_ids))
        manifest = export_task(db, config, run_id, out)
        counts["export"] = {"export_id": manifest.export_id, "rows": manifest.total_rows,
                            "by_domain": manifest.counts_by_domain,
                            "shortfall": [s.model_dump() for s in manifest.shortfall]}
    # The counts per stage, shown on the flow run in the Prefect UI (key: one history per database).
    create_markdown_artifact(counts_markdown(counts), key="curate-run-counts",
                             description=f"counts per stage, database {Path(db).name}")
    return counts
