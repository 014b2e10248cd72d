"""Rollouts planned, run, verified, stored and checked, resumable per trajectory: what the agentic
stage (pipeline/stages/agentic.py) and the engine tests call.

    jobs = plan_jobs(tasks, model, cfg, mode)                   # ids known before any engine call
    counts = run_and_store(store, jobs, make_turn_engine, cfg, run_id)
    failures = trace_rule_pass(store, [j.rollout.trajectory_id for j in jobs], run_id)

run_and_store skips the trajectories already stored and makes the turn engine only when some
are left (a resumed run loads no model). Finished rollouts are verified (verify_outcomes), then
written with their messages and their outcome verdict, `store_every` at a time, one transaction
each: a killed run keeps what it finished.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from filters.trace import build_trace_rules
from pipeline.agentic.driver import DriveStats, RolloutJob, drive
from pipeline.agentic.envs import make
from pipeline.agentic.perturb.response_format import ResponseChoice
from pipeline.agentic.prompting import PromptMode, PromptPlan, system_prompt
from pipeline.agentic.rollout import Rollout
from pipeline.agentic.store import TRACE_RULE_INPUT, existing_trajectory_ids, trajectory_frames
from pipeline.agentic.verify import verify_outcomes
from pipeline.engines.base import Sampling
from pipeline.hashing import seed_from, stable_hash
from pipeline.store import Store, now
from schemas import rows
from schemas.agentic import Task, Trajectory
from schemas.config import AgenticConfig

OUTCOME_RULE, OUTCOME_VERSION = "outcome", 1


def plan_jobs(tasks: list[Task], model: str, cfg: AgenticConfig, mode: PromptMode) -> list[RolloutJob]:
    """k rollouts per task, each with its seed and its perturbation choices drawn from it."""
    jobs = []
    system = system_prompt(mode)
    # The instructions' hash is recorded, so it is part of the trajectory id: new instructions, new rollouts.
    recorded = {"think_prefill": cfg.think_prefill, "instructions": stable_hash(system, length=8)}
    for task in tasks:
        for k in range(cfg.rollouts_per_task):
            seed = seed_from(cfg.seed, task.task_id, k)
            env = make(task.environment)
            plan = PromptPlan.draw(seed, env.tool_specs(task.tools), mode, cfg.call_syntaxes, cfg.tool_docs)
            response = ResponseChoice.draw(seed, transient_error_rate=cfg.transient_error_rate)
            rollout = Rollout(task, env, model=model, seed=seed, response=response, max_steps=cfg.max_steps,
                              call_syntax=plan.call_syntax, system_prompt=system, recorded=plan.record() | recorded)
            jobs.append(RolloutJob(rollout, plan))
    return jobs


def sampling_of(cfg: AgenticConfig) -> Sampling:
    return Sampling(temperature=cfg.temperature, max_tokens=cfg.max_tokens, stop=tuple(cfg.stop))


def run_and_store(store: Store, jobs: list[RolloutJob], make_turn_engine: Callable[[], object], cfg: AgenticConfig,
                  run_id: str, on_stored: Callable[[int], None] | None = None) -> tuple[dict, DriveStats | None]:
    """Run the jobs not stored yet; returns (counts, the driver's stats or None when nothing ran)."""
    stored = existing_trajectory_ids(store, [j.rollout.trajectory_id for j in jobs])
    todo = [j for j in jobs if j.rollout.trajectory_id not in stored]
    counts = {"planned": len(jobs), "already_stored": len(jobs) - len(todo), "new": 0}
    if not todo:
        return counts, None
    engine = make_turn_engine()
    buffer: list[Trajectory] = []

    def flush() -> None:
        if not buffer:
            return
        done = store_finished(store, buffer, run_id)
        counts["new"] += len(done)
        if on_stored:
            on_stored(len(buffer))
        buffer.clear()

    def on_done(rollout: Rollout) -> None:
        buffer.append(rollout.trajectory())
        if len(buffer) >= cfg.store_every:
            flush()

    stats = drive(todo, engine, sampling_of(cfg), max_in_flight=cfg.max_in_flight, tool_workers=cfg.tool_workers,
                  think_prefill=cfg.think_prefill, on_done=on_done, knows_reasoning=engine.knows_reasoning())
    flush()
    return counts, stats


def store_finished(store: Store, trajectories: list[Trajectory], run_id: str) -> list[Trajectory]:
    """Verify finished trajectories, then write them with their messages and outcome verdicts in
    one transaction; returns them with `correct` set."""
    verdicts = verify_outcomes(trajectories)
    done = [t.model_copy(update={"outcome": t.outcome.model_copy(update={"correct": v.passed})})
            for t, v in zip(trajectories, verdicts)]
    frames = trajectory_frames(done, run_id)
    frames["trajectory_verdicts"] = outcome_verdicts(done, verdicts, run_id)
    store.insert_many(frames)
    return done


def outcome_verdicts(trajectories: list[Trajectory], verdicts, run_id: str) -> pl.DataFrame:
    created = now()
    out = [{"trajectory_id": t.trajectory_id, "stage": "outcome", "rule": OUTCOME_RULE,
            "rule_version": OUTCOME_VERSION, "passed": v.passed, "score": float(v.passed), "reason": v.reason,
            "run_id": run_id, "created_at": created, "config_hash": ""}
           for t, v in zip(trajectories, verdicts) if v.passed is not None]
    return pl.DataFrame(out, schema=rows.TRAJECTORY_VERDICT)


def trace_rule_pass(store: Store, trajectory_ids: list[str], run_id: str, disabled: tuple[str, ...] = ()) -> dict:
    """Every trace rule over these trajectories where it has no verdict under its current config
    hash; returns {rule: {"checked": n, "failed": m}}."""
    probe = pl.DataFrame({"id": trajectory_ids}, schema={"id": pl.String})
    counts = {}
    for rule in build_trace_rules(disabled=disabled):
        todo = store.frame(
            f"SELECT x.* FROM ({TRACE_RULE_INPUT}) x WHERE x.trajectory_id IN (SELECT id FROM probe) AND NOT EXISTS ("
            "SELECT 1 FROM trajectory_verdicts v WHERE v.trajectory_id = x.trajectory_id AND v.rule = ? "
            "AND v.rule_version = ? AND v.config_hash = ?) ORDER BY x.trajectory_id",
            [rule.name, rule.version, rule.config_hash], probe=probe)
        if todo.is_empty():
            counts[rule.name] = {"checked": 0, "failed": 0}
            continue
        results = rule.check_batch(todo)
        frame = pl.DataFrame({
            "trajectory_id": todo["trajectory_id"], "stage": "trace", "rule": rule.name,
            "rule_version": rule.version, "passed": results["passed"], "score": results["score"],
            "reason": results["reason"], "run_id": run_id, "created_at": now(), "config_hash": rule.config_hash,
        })
        frame = frame.cast({c: t for c, t in rows.TRAJECTORY_VERDICT.items() if c in frame.columns})
        store.insert("trajectory_verdicts", frame)
        counts[rule.name] = {"checked": todo.height, "failed": int((~results["passed"]).sum())}
    return counts
