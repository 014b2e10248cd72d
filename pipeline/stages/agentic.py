"""Agentic stage: tasks in the three tool environments rolled out on the run's engine, verified by
outcome, stored with their messages, and checked by the trace rules (filters/trace/).

Tasks: `agentic.db_questions` generated shop_db questions (pipeline/agentic/tasks/db_questions.py;
the ground truth is the reference query's result), `math_questions` of the run's math questions
with a reference (calculator@1), `code_questions` of its code questions whose tests are plain
asserts (python_exec@1). Each task gets `rollouts_per_task` rollouts (pass@k). The perturbation
choices of the run's trajectories are summarized per axis (coverage and the overfit alarm,
pipeline/agentic/coverage.py: perturbation_values, perturbation_summary); alarms are run notes.

Resumable per trajectory: the ids are known before the engine is touched, stored ones are
skipped, and the model loads only when something is left to roll out. Verdicts go to
`trajectory_verdicts` (the outcome check and each trace rule), not `verdicts`: everything that
reads `verdicts` takes its key for a sample. Off unless `agentic.enabled` (configs/agentic.yaml).
"""

from __future__ import annotations

import polars as pl

from pipeline.agentic.coverage import ALL, record_perturbations
from pipeline.agentic.coverage import notes as coverage_notes
from pipeline.agentic.prompting import template_renders_tools
from pipeline.agentic.runner import plan_jobs, run_and_store, trace_rule_pass
from pipeline.agentic.tasks.db_questions import generate
from pipeline.agentic.tasks.pool_tasks import tasks_from_questions
from pipeline.stage import StageContext, StageReport
from schemas.agentic import Task
from schemas.config import AgenticConfig, EngineConfig


def build_tasks(ctx: StageContext, cfg: AgenticConfig) -> list[Task]:
    ids = ctx.run.question_ids
    where = "WHERE question_id IN (SELECT question_id FROM probe)" if ids is not None else ""
    probe = {"probe": pl.DataFrame({"question_id": ids}, schema={"question_id": pl.String})} if ids is not None else {}
    questions = ctx.store.frame(
        "SELECT question_id, text, domain, answer_type, reference_answer, tests FROM questions "
        f"{where} ORDER BY question_id", **probe)
    math, code = tasks_from_questions(questions.iter_rows(named=True), cfg.math_tools)
    db = generate(seed=cfg.seed, n=cfg.db_questions) if cfg.db_questions else []
    return db + math[:cfg.math_questions] + code[:cfg.code_questions]


def prompt_mode(cfg: AgenticConfig, engine: EngineConfig, say=print) -> str:
    """chat_template when the model's template renders `tools` (read from its tokenizer, no model
    load); a served model (kind openai) is taken to have one unless the config says otherwise."""
    if cfg.prompt_mode != "auto":
        return cfg.prompt_mode
    if engine.kind == "openai":
        return "chat_template"
    from transformers import AutoTokenizer

    from pipeline.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(engine.model, announce=say))
    return "chat_template" if template_renders_tools(tokenizer) else "system_prompt"


def turn_engine_for(ctx: StageContext):
    """The run's engine as a turn engine: the in-process vLLM engine stepped directly, or the server."""
    engine_config = ctx.config.engine
    if engine_config.kind == "openai":
        import os

        from pipeline.agentic.turn_engines import HttpTurnEngine

        return HttpTurnEngine(engine_config.servers[0], engine_config.model,
                              api_key=os.environ.get(engine_config.api_key_env),
                              max_concurrency=engine_config.max_concurrency, timeout_s=engine_config.timeout_s,
                              max_retries=engine_config.max_retries,
                              renders_tools=prompt_mode(ctx.config.agentic, engine_config) == "chat_template")
    from pipeline.agentic.turn_engines import VllmTurnEngine

    engine = ctx.engine
    return VllmTurnEngine(engine.unwrap() if hasattr(engine, "unwrap") else engine)


def run(ctx: StageContext) -> StageReport:
    cfg = ctx.config.agentic
    if not cfg.enabled:
        return StageReport({"enabled": False})
    tasks = build_tasks(ctx, cfg)
    mode = prompt_mode(cfg, ctx.config.engine, ctx.run.say)
    jobs = plan_jobs(tasks, ctx.config.engine.model, cfg, mode)
    ids = [j.rollout.trajectory_id for j in jobs]
    ctx.progress.start("agentic rollouts", len(jobs))
    try:
        counts, stats = run_and_store(ctx.store, jobs, lambda: turn_engine_for(ctx), cfg, ctx.run_id,
                                      ctx.progress.advance)
    finally:
        ctx.progress.done()
    rules = trace_rule_pass(ctx.store, ids, ctx.run_id, tuple(cfg.disabled_rules))
    per_env = summary(ctx, ids)
    axes = record_perturbations(ctx.store, ids, cfg, mode, ctx.run_id)
    report = counts | {"prompt_mode": mode, "environments": per_env, "trace_rules": rules,
                       "perturbations": perturbation_counts(axes)}
    if stats is not None:
        report["driver"] = stats.as_counts()
    notes = [f"[agentic] {env}: {v['trajectories']} trajectories, {v['passed']} passed of {v['verified']} verified"
             for env, v in per_env.items()]
    return StageReport(report, notes + coverage_notes(axes))


def perturbation_counts(axes) -> dict:
    """Over all environments: per axis the values drawn of those configured, and the alarms."""
    every = axes.filter(axes["environment"] == ALL)
    return {"axes": {r["axis"]: {"values": r["n_values"], "configured": r["n_configured"], "covered": r["covered"],
                                 "dominant_share": r["dominant_share"]} for r in every.iter_rows(named=True)},
            "alarms": int(axes["alarm"].sum()) if axes.height else 0}


def summary(ctx: StageContext, ids: list[str]) -> dict:
    """Per environment over this run's planned trajectories (stored now or before)."""
    frame = ctx.store.frame(
        "SELECT environment, count(*) AS trajectories, count(correct) AS verified, "
        "count(*) FILTER (WHERE correct) AS passed, CAST(sum(steps) AS BIGINT) AS tool_calls, "
        "count(*) FILTER (WHERE outcome = 'answered') AS answered FROM trajectories "
        "WHERE trajectory_id IN (SELECT id FROM probe) GROUP BY environment ORDER BY environment",
        probe=pl.DataFrame({"id": ids}, schema={"id": pl.String}))
    return {r.pop("environment"): r for r in frame.iter_rows(named=True)}
