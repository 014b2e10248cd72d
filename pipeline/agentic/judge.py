"""Judge rules over agentic trajectories (rules with target: trajectory, e.g. step_reasoning): the
judge stage (pipeline/stages/judge.py run_judge) hands them here.

Like the sample judges: only trajectories the rule applies to and that have no verdict from it
under its current config hash are judged (a re-run judges nothing; `curate judges backfill RULE`
judges what is stored); a reply that does not parse is retried, then stored as a judge error
(passed false, score NULL, reason "judge error: ...", the raw replies in details), never as a pass.
Verdicts go to trajectory_verdicts with stage 'judge', tokens and details.

Eligibility reads trajectory_verdicts: per trajectory and rule the newest verdict counts.
after_stages: no counting verdict of those stages failed, and when `trace` is listed the trace
rules have run on it; only_undecided: no counting verdict of any other rule failed.
A run's token budget stops judging between batches; what is left is judged by a later run (it
is not written to judge_skips, whose judge_pending view is about samples).
"""

from __future__ import annotations

import json

import polars as pl

from pipeline.agentic.store import TRACE_RULE_INPUT
from pipeline.progress import NoProgress, Progress
from pipeline.store import Store, now
from schemas import rows
from schemas.chat import ChatBackend
from schemas.judge_rule import JudgeRule

# What a trajectory rule's prompt reads (judges/render.py): the trace rules' input plus the
# task's domain and reference, the environment and the final answer.
JUDGE_INPUT = f"""
SELECT x.*, t.environment, t.final_answer, t.task ->> '$.domain' AS domain,
       t.task ->> '$.verification.reference' AS reference_answer
FROM ({TRACE_RULE_INPUT}) x JOIN trajectories t USING (trajectory_id)
"""

# The verdict that counts per trajectory and rule: the newest (a trace rule re-run under a new
# config writes a newer row).
LATEST_TRAJECTORY_VERDICTS = """
SELECT * FROM trajectory_verdicts
QUALIFY row_number() OVER (PARTITION BY trajectory_id, rule ORDER BY created_at DESC, rule_version DESC) = 1
"""


def _marks(values: list) -> str:
    return "(" + ", ".join("?" * len(values)) + ")"


def eligible_trajectories(store: Store, rule: JudgeRule, config_hash: str, limit: int | None = None) -> pl.DataFrame:
    """JUDGE_INPUT rows this rule should judge now: it applies, and it has no verdict under config_hash."""
    a = rule.applies_to
    where, params = [], []
    latest = f"({LATEST_TRAJECTORY_VERDICTS})"
    if a.only_undecided:
        where.append(f"NOT EXISTS (SELECT 1 FROM {latest} lv WHERE lv.trajectory_id = x.trajectory_id "
                     "AND NOT lv.passed AND lv.rule <> ?)")
        params.append(rule.name)
    if a.after_stages:
        where.append(f"NOT EXISTS (SELECT 1 FROM {latest} lv WHERE lv.trajectory_id = x.trajectory_id "
                     f"AND NOT lv.passed AND lv.rule <> ? AND lv.stage IN {_marks(a.after_stages)})")
        params += [rule.name, *a.after_stages]
        if "trace" in a.after_stages:
            where.append("EXISTS (SELECT 1 FROM trajectory_verdicts f WHERE f.trajectory_id = x.trajectory_id "
                         "AND f.stage = 'trace')")
    fields, field_params = a.sql("x")  # domains, reference: as for samples
    where += fields
    params += field_params
    sql = f"""SELECT * FROM ({JUDGE_INPUT}) x WHERE {" AND ".join(where) or "TRUE"} AND NOT EXISTS (
                  SELECT 1 FROM trajectory_verdicts v WHERE v.trajectory_id = x.trajectory_id AND v.rule = ?
                  AND v.config_hash = ?)
              ORDER BY x.trajectory_id""" + (f" LIMIT {int(limit)}" if limit else "")
    return store.frame(sql, [*params, rule.name, config_hash])


def verdict_rows(ids: list[str], results: list[dict], rule: JudgeRule, run_id: str, config_hash: str) -> pl.DataFrame:
    created = now()
    out = []
    for tid, r in zip(ids, results):
        d = json.loads(r["details"])
        out.append({"trajectory_id": tid, "stage": "judge", "rule": rule.name, "rule_version": rule.version,
                    "passed": r["passed"], "score": r["score"], "reason": r["reason"], "run_id": run_id,
                    "created_at": created, "config_hash": config_hash, "details": r["details"],
                    "prompt_tokens": d["prompt_tokens"], "completion_tokens": d["completion_tokens"]})
    return pl.DataFrame(out, schema=rows.TRAJECTORY_VERDICT)


def run_trajectory_judge(store: Store, rule: JudgeRule, engine: ChatBackend, run_id: str, *, report, budget,
                         batch_size: int = 64, max_retries: int = 2, limit: int | None = None,
                         progress: Progress | None = None):
    """Judge the eligible trajectories in batches into trajectory_verdicts; fills and returns
    `report` (pipeline.stages.judge.JudgeReport), spending `budget` (its TokenBudget)."""
    from pipeline.stages.judge import judge_config, judge_in_batches
    from pipeline.verdicts import record_configs

    progress = progress or NoProgress()
    config = judge_config(rule, engine.model_name)
    todo = eligible_trajectories(store, rule, config.config_hash, limit).to_dicts()
    report.eligible = len(todo)
    progress.start(f"judge: {rule.name} v{rule.version} (trajectories)", len(todo))

    def write(batch: list[dict], results: list[dict]) -> tuple[int, int, int]:
        frame = verdict_rows([r["trajectory_id"] for r in batch], results, rule, run_id, config.config_hash)
        store.insert("trajectory_verdicts", frame)
        return int(frame["passed"].sum()), int(frame["prompt_tokens"].sum()), int(frame["completion_tokens"].sum())

    done = judge_in_batches(todo, rule, engine, write, report=report, budget=budget, batch_size=batch_size,
                            max_retries=max_retries, progress=progress)
    report.skipped_budget = len(todo) - done
    record_configs(store, [config], run_id)
    progress.done()
    return report

