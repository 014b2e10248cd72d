"""What the verdict-writing stages share: finding unjudged samples, writing verdicts, and
recording the config hash each rule ran with.

Row-level idempotence: every verdict carries its rule's config hash (filters.base
config_fingerprint: rule, version, effective parameters; judges add model, sampling and rubric).
A stage computes a rule only for samples with no verdict under the current hash: a re-run
computes nothing, a changed parameter recomputes that rule, switching back reuses the old rows.
When a stage finishes a rule it records the hash in rule_configs; the latest_verdicts view
then prefers verdicts made under it (pipeline/store.py). Recording at the end, not the start,
means a run killed mid-stage leaves the previous config's verdicts current until a run finishes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from pipeline.store import Store, now
from schemas import rows

VERDICT_SCHEMA = rows.VERDICT
CONFIG_SCHEMA = rows.RULE_CONFIG
SAMPLE_VIEW = rows.SAMPLE_VIEW  # the columns a rule may read: the sample's parts plus its question's


@dataclass(frozen=True)
class RuleConfig:
    """A rule as a stage ran it: what rule_configs records."""

    rule: str
    stage: str
    version: int
    config_hash: str
    params: Mapping = field(default_factory=dict)


def unjudged(store: Store, rule: str, version: int, where: str = "TRUE", limit: int | None = None,
             where_params: list | None = None, config_hash: str | None = None) -> pl.DataFrame:
    """Samples with no verdict from this rule under `config_hash` (None: at this version, any
    hash), optionally narrowed by `where`, an SQL condition on SAMPLE_VIEW's columns as `x`,
    with `where_params` for its ? marks."""
    match, key = ("v.config_hash = ?", config_hash) if config_hash is not None else ("v.rule_version = ?", version)
    sql = f"""
        SELECT * FROM ({SAMPLE_VIEW}) x
        WHERE {where} AND NOT EXISTS (
            SELECT 1 FROM verdicts v WHERE v.sample_id = x.sample_id AND v.rule = ? AND {match})
        ORDER BY sample_id
    """ + (f" LIMIT {int(limit)}" if limit else "")
    return store.frame(sql, [*(where_params or []), rule, key])


def verdict_frame(sample_ids: list[str], results: pl.DataFrame, *, stage: str, rule: str, version: int,
                  run_id: str, details: list[str | None] | None = None,
                  tokens: list[tuple[int, int]] | None = None, config_hash: str = "") -> pl.DataFrame:
    n = len(sample_ids)
    return pl.DataFrame(
        {
            "sample_id": sample_ids, "stage": [stage] * n, "rule": [rule] * n, "rule_version": [version] * n,
            "passed": results["passed"], "score": results["score"], "reason": results["reason"],
            "details": details or [None] * n, "run_id": [run_id] * n, "created_at": [now()] * n,
            "prompt_tokens": [t[0] for t in tokens] if tokens else [None] * n,
            "completion_tokens": [t[1] for t in tokens] if tokens else [None] * n,
            "config_hash": [config_hash] * n,
        },
        schema=VERDICT_SCHEMA,
    )


def record_configs(store: Store, configs: list[RuleConfig], run_id: str) -> int:
    """Note the hash each rule just ran with, where it differs from the recorded one (a re-run
    writes nothing). Returns how many rules switched."""
    recorded = dict(store.frame("SELECT rule, config_hash FROM rule_configs").rows())
    changed = [c for c in configs if recorded.get(c.rule) != c.config_hash]
    if changed:
        store.replace("rule_configs", pl.DataFrame(
            {"rule": [c.rule for c in changed], "stage": [c.stage for c in changed],
             "rule_version": [c.version for c in changed], "config_hash": [c.config_hash for c in changed],
             "params": [json.dumps(dict(c.params), sort_keys=True, ensure_ascii=False) for c in changed],
             "run_id": run_id, "updated_at": now()},
            schema=CONFIG_SCHEMA))
    return len(changed)
