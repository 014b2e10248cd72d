"""The `judge-backfill` Prefect flow: run one judge rule over what is already in the store.

Adding a rule is one YAML file plus this flow (`curate judges backfill RULE`): it judges only
samples with no verdict from the rule at its version, so a second run judges nothing."""

from __future__ import annotations

from prefect import flow

from flows.run_context import ActiveRun, say
from flows.tasks import run_stage
from judges.loader import load_rule
from pipeline.config_loading import load_run_config
from pipeline.run_lock import run_lock
from pipeline.run_record import recorded_run
from pipeline.stage import RunState


@flow(name="judge-backfill", persist_result=False)
def judge_backfill(rule: str, config_path: str | None = None, rules_dir: str | None = None,
                   db: str = "curate.duckdb", limit: int | None = None, token_budget: int | None = None) -> dict:
    config = load_run_config(config_path)
    if rules_dir:
        config = config.model_copy(update={"judges": config.judges.model_copy(update={"rules_dir": rules_dir})})
    judge_rule = load_rule(rule, config.judges.rules_dir)  # fail before locking or recording a run
    with run_lock(db):
        run_config = {"command": "judges backfill", "rule": judge_rule.name, "rule_version": judge_rule.version,
                      "limit": limit, "token_budget": token_budget, **config.model_dump(mode="json")}
        with recorded_run(db, run_config, config.config_hash()) as (run_id, counts):
            run = ActiveRun(db, counts, RunState(run_id, config, say=say), flow_name="judge-backfill")
            report = run_stage(run, "judge", rules=[rule], limit=limit, token_budget=token_budget)
            counts["judges"] = {judge_rule.name: report.counts[rule]}
        return counts
