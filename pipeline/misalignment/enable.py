"""`curate rules enable/disable RULE`: a rule starts or stops counting.

Enabling records the rule in `rule_states` and backfills its real verdicts (only samples with no
verdict under its current config hash). Disabling flips the state: its verdicts stay stored and
stop counting (latest_verdicts skips disabled rules), so sample_status and the next export
change and nothing is lost; enabling again makes them count again without recomputing.

SQL rules that are enabled also run in every `curate run` (the sql-rules stage) over the new
samples. Python rules run where the run config has them; judge rules through `curate judges
backfill` and the judge stage.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.misalignment import sql_rules
from pipeline.misalignment.loop_rules import LoopRule
from pipeline.store import Store, now
from pipeline.verdicts import RuleConfig, record_configs, verdict_frame
from schemas import rows
from schemas.sql_rule import SqlRule

_CHUNK = 50_000


def set_state(store: Store, rule: LoopRule, enabled: bool) -> None:
    store.replace("rule_states", pl.DataFrame(
        [{"rule": rule.name, "kind": rule.kind, "enabled": enabled,
          "definition": json.dumps(rule.definition, sort_keys=True), "source": rule.source, "changed_at": now()}],
        schema=rows.RULE_STATE))


def enable(db: str | Path, rule: LoopRule, run_id: str) -> int:
    """Enable and backfill; returns how many verdicts were written."""
    if rule.kind == "judge":
        with Store(db) as store:
            set_state(store, rule, True)
        return 0  # judged by the judge stage / `curate judges backfill`
    hits = sql_rules.matching_ids(db, rule.sql) if rule.kind == "sql" else None
    with Store(db) as store:
        set_state(store, rule, True)
        if rule.kind == "sql":
            return backfill_sql(store, rule.sql, hits, run_id)
        from pipeline.verdict_loop import run_verdicts

        counts = run_verdicts(store, [rule.cheap], run_id, rule.stage)
        return sum(c.new for c in counts)


def disable(db: str | Path, rule: LoopRule) -> None:
    with Store(db) as store:
        set_state(store, rule, False)


def backfill_sql(store: Store, rule: SqlRule, hits: set[str], run_id: str) -> int:
    """Verdicts of a SQL rule for every sample without one under its hash (a match fails)."""
    digest = sql_rules.config_hash(rule)
    due = store.frame("""SELECT sample_id FROM samples s WHERE NOT EXISTS (
                             SELECT 1 FROM verdicts v WHERE v.sample_id = s.sample_id AND v.rule = ?
                             AND v.config_hash = ?) ORDER BY sample_id""", [rule.name, digest])["sample_id"].to_list()
    for start in range(0, len(due), _CHUNK):
        ids = due[start:start + _CHUNK]
        store.insert("verdicts", verdict_frame(ids, sql_rules.results_for(ids, hits, rule), stage=sql_rules.STAGE,
                                               rule=rule.name, version=rule.version, run_id=run_id,
                                               config_hash=digest))
    record_configs(store, [RuleConfig(rule.name, sql_rules.STAGE, rule.version, digest, {"where": rule.where})], run_id)
    return len(due)


def enabled_sql_rules(store: Store) -> list[SqlRule]:
    """The SQL rules enabled in this store, as they were enabled (their stored definition)."""
    found = store.frame("SELECT definition FROM rule_states WHERE kind = 'sql' AND enabled ORDER BY rule")
    return [SqlRule.model_validate_json(d) for d in found["definition"]]
