"""A store for the report's tests, without a model: the misalignment loop's store (real GSM8K
questions answered with their reference solutions, planted bad samples, the real cheap rules'
and answer_match's verdicts), then the real style-metrics, difficulty and rebalance-export stages
of run-0, as a run would leave it (the samples taken as the current generation config's). Half the questions get a pool level (as MATH's `level` gives)
so the difficulty-vs-level figures have rows. With `agentic` (the default), run-0 also holds
trajectories (add_trajectories) for the agentic section; without, the store has none."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.agentic.coverage import record_perturbations
from pipeline.agentic.perturb.call_syntax import CALL_SYNTAXES, render_calls
from pipeline.agentic.runner import plan_jobs, store_finished, trace_rule_pass
from pipeline.agentic.tasks.db_questions import generate
from pipeline.agentic.tasks.pool_tasks import tasks_from_questions
from pipeline.config_loading import load_run_config
from pipeline.stage import RunState, StageContext
from pipeline.stages import difficulty, export, style_metrics
from pipeline.stages.synthesize import gen_config_hash
from pipeline.store import Store, now
from schemas.agentic import ToolCall
from schemas.config import AgenticConfig
from tests.misalignment.loop_store import build as build_loop_store

RUN = "run-0"


def build(path: Path, out: Path, agentic: bool = True) -> Path:
    build_loop_store(path)
    config = load_run_config(None)
    config.rebalance.targets = {"math": 1.0}
    with Store(path) as store:
        store.insert("runs", pl.DataFrame([{
            "run_id": RUN, "started_at": now(), "finished_at": now(), "status": "finished",
            "config_hash": config.config_hash(), "config": json.dumps(config.model_dump(mode="json")),
            "counts": "{}", "error": None}]))
        # the samples as the current generation config's (the style metrics read those)
        store.con.execute("UPDATE samples SET gen_config_hash = ?",
                          [gen_config_hash(config.synthesis, config.engine.model)])
        store.con.execute("UPDATE questions SET level = (CAST(right(question_id, 2) AS INTEGER) % 5) / 4 "
                          "WHERE CAST(right(question_id, 1) AS INTEGER) % 2 = 0")
        ctx = StageContext(store, RunState(RUN, config), options={"out": str(out)})
        for stage in (style_metrics, difficulty, export):
            stage.run(ctx)
        if agentic:
            add_trajectories(store)
    return path


def add_trajectories(store: Store) -> list[str]:
    """Run-0's trajectories without a model: generated shop_db questions and the store's math
    questions with the calculator, planned by the real plan_jobs (every call syntax, so every
    axis is drawn), each rolled out by the real rollout on scripted turns (a tool call written in
    its drawn syntax, then an answer: the reference on even rollouts, a wrong one on odd), then
    verified, stored, checked by the trace rules and summarized per perturbation axis as the
    agentic stage does."""
    cfg = AgenticConfig(enabled=True, db_questions=6, math_questions=3, rollouts_per_task=2,
                        call_syntaxes=list(CALL_SYNTAXES), alarm_min_samples=5)
    questions = store.frame("SELECT question_id, text, domain, answer_type, reference_answer, tests FROM questions "
                            "ORDER BY question_id")
    math, _ = tasks_from_questions(questions.iter_rows(named=True))
    jobs = plan_jobs(generate(seed=0, n=cfg.db_questions) + math[:cfg.math_questions], "scripted-turns", cfg,
                     "system_prompt")
    finished = []
    for i, job in enumerate(jobs):
        r, v = job.rollout, job.rollout.task.verification
        call = (ToolCall(id="c", name="query", arguments={"sql": v.reference_query}) if v.reference_query
                else ToolCall(id="c", name="evaluate", arguments={"expression": "6 * 7"}))
        r.advance("<think>I look it up before answering.</think>\n" + render_calls(r.call_syntax, [call]))
        if not r.done:
            r.advance(f"<think>The result is in; I answer.</think>\nFinal answer: {v.reference if i % 2 == 0 else -1}")
        finished.append(r.trajectory())
    ids = [t.trajectory_id for t in store_finished(store, finished, RUN)]
    trace_rule_pass(store, ids, RUN)
    record_perturbations(store, ids, cfg, "system_prompt", RUN)
    return ids
