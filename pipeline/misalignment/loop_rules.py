"""The rules the loop previews and enables, whatever their kind: a SQL rule (YAML with `where:`),
a cheap Python rule (registered, built from the run config, even if `filters.disabled` lists
it), or a judge rule (YAML with a prompt; previewing it needs the engine). One shape for all."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from filters.base import SampleFilter
from filters.registry import registered
from pipeline.misalignment import sql_rules
from schemas.judge_rule import JudgeRule
from schemas.sql_rule import SqlRule


@dataclass
class LoopRule:
    kind: str                 # sql | cheap | judge
    name: str
    version: int
    config_hash: str
    stage: str                # the stage its verdicts are stored under
    sql: SqlRule | None = None
    cheap: SampleFilter | None = None
    judge: JudgeRule | None = None
    source: str | None = None
    definition: dict = field(default_factory=dict)


def resolve(ref: str, config, sql_folders: list[Path] | None = None) -> LoopRule:
    """A rule by name or YAML path; KeyError saying what was looked for."""
    found = sql_rules.find_sql_rule(ref, sql_folders)
    if found:
        rule, path = found
        return LoopRule("sql", rule.name, rule.version, sql_rules.config_hash(rule), sql_rules.STAGE, sql=rule,
                        source=str(path), definition=rule.model_dump())
    classes = registered(config.filters.modules)
    if ref in classes:
        rule = classes[ref].from_config(config)
        return LoopRule("cheap", rule.name, rule.version, rule.config_hash, rule.stage, cheap=rule,
                        definition={"params": rule.hash_params()})
    try:
        from judges.loader import load_rule

        judge = load_rule(ref, config.judges.rules_dir)
        # Its config hash depends on the judge model: set when an engine is known (judge_preview).
        return LoopRule("judge", judge.name, judge.version, "", "judge", judge=judge, source=ref)
    except (FileNotFoundError, KeyError, ValueError):
        pass
    raise KeyError(f"no rule {ref!r}: not a SQL rule YAML (a path, or a name in filters/sql/), "
                   f"not a registered Python rule ({', '.join(sorted(classes))}), not a judge rule")
