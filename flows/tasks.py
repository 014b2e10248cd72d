"""The Prefect tasks of the curate stages: one task per stage, each a thin call into pipeline/.

Tasks write to DuckDB themselves: nothing for Prefect to cache or persist. Each task opens its
own connection from the path (Prefect keeps task parameters alive, and a live connection object
held past shutdown makes DuckDB's bindings report leaks). Tasks that call a model retry on engine
errors only (flows/retries.py); the stages resume at row level, so a retry redoes what is missing."""

from __future__ import annotations

import contextvars
from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from filters.decontam import AnswerContamination
from filters.registry import cheap_filters
from flows.retries import ENGINE_RETRIES
from flows.run_context import say
from judges.loader import load_rule
from pipeline.engines.factory import make_engine
from pipeline.progress import NoProgress, Progress
from pipeline.stages.difficulty import score_difficulty
from pipeline.stages.domains import classify_run_questions
from pipeline.stages.filter import run_filters
from pipeline.stages.ingest import ingest
from pipeline.stages.judge import TokenBudget, run_judge
from pipeline.stages.publish import select_and_export
from pipeline.stages.screen import benchmark_index, screen_questions, usable
from pipeline.stages.style_metrics import record_style_metrics
from pipeline.stages.synthesize import gen_config_hash, synthesize
from pipeline.stages.verify import run_verify
from pipeline.store import Store

# The CLI's live progress bars (a live object, so not a task parameter).
progress_var: contextvars.ContextVar[Progress] = contextvars.ContextVar("progress", default=NoProgress())

_task = dict(cache_policy=NONE, persist_result=False)


@task(name="ingest", task_run_name="ingest", **_task)
def ingest_task(db, config, run_id):
    with Store(db) as store:
        return ingest(store, config, run_id)


@task(name="screen-questions", task_run_name="screen-questions", **_task)
def screen_task(db, config, run_id, pool):
    """Decontamination against benchmarks and dedup; returns (report, usable pool)."""
    index = benchmark_index(config, None)
    with Store(db) as store:
        report = screen_questions(store, config, run_id, pool, index)
        return report, usable(store, pool)


@task(name="classify-domains", task_run_name="classify-domains", **ENGINE_RETRIES, **_task)
def domains_task(db, engine, config, run_id, question_ids):
    with Store(db) as store:
        return classify_run_questions(store, config.domains, run_id, question_ids, progress_var.get(), engine=engine)


@task(name="synthesize", task_run_name="synthesize", **ENGINE_RETRIES, **_task)
def synthesize_task(db, engine, config, run_id, question_ids):
    with Store(db) as store:
        return synthesize(store, engine, config.synthesis, run_id, question_ids, progress_var.get())


@task(name="rule-filters", task_run_name="rule-filters", **_task)
def filter_task(db, config, run_id):
    """Every cheap rule over the samples without its verdict; generated answers against benchmarks."""
    with Store(db) as store:
        rules = cheap_filters(config.filters, config.synthesis.custom_patterns())
        counts = run_filters(store, rules, run_id, progress=progress_var.get())
        if config.decontamination.check_answers:
            index = benchmark_index(config, None)
            counts += run_filters(store, [AnswerContamination(index)], run_id, stage="decontam",
                                  progress=progress_var.get())
        return counts


@task(name="verify", task_run_name="verify", **_task)
def verify_task(db, run_id):
    """Answers against references (math_verify) and code against its tests (sandbox)."""
    with Store(db) as store:
        return run_verify(store, run_id, progress=progress_var.get())


@task(name="judge", task_run_name="judge-{rule_name}", **ENGINE_RETRIES, **_task)
def judge_task(db, engine, config, run_id, rule_name, tokens_left, limit=None):
    """One judge rule; `tokens_left` is what the run's token budget still allows (None: no limit)."""
    rule = load_rule(rule_name, config.judges.rules_dir)
    if rule.engine is not None:  # the rule names its own judge model
        engine = make_engine(rule.engine, announce=say)
    with Store(db) as store:
        return run_judge(store, rule, engine, run_id, batch_size=config.judges.batch_size,
                         max_retries=config.judges.max_parse_retries, budget=TokenBudget(tokens_left),
                         limit=limit, progress=progress_var.get())


@task(name="style-metrics", task_run_name="style-metrics", **_task)
def style_metrics_task(db, config, run_id, question_ids, model):
    with Store(db) as store:
        return record_style_metrics(store, config.synthesis, run_id, question_ids,
                                    gen_config_hash(config.synthesis, model))


@task(name="difficulty", task_run_name="difficulty", **ENGINE_RETRIES, **_task)
def difficulty_task(db, engine, config, run_id, question_ids):
    with Store(db) as store:
        return score_difficulty(store, run_id, question_ids, config=config.difficulty, engine=engine,
                                rules_dir=config.judges.rules_dir, progress=progress_var.get())


@task(name="rebalance-export", task_run_name="rebalance-export", **_task)
def export_task(db, config, run_id, out_dir, skip_unchanged=False):
    """The shard set's manifest, or None when skip_unchanged and the newest export is still current."""
    with Store(db) as store:
        return select_and_export(store, config, run_id, Path(out_dir), skip_unchanged=skip_unchanged)
