"""Every stage of a curate run, in run order: name (the Prefect task's), where the run records
its counts, and its `run(ctx) -> StageReport` (pipeline/stage.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.stage import StageContext, StageReport
from pipeline.stages import (agentic, difficulty, domains, export, filter, ingest, judge, screen, sql_rules,
                             style_metrics, synthesize, verify)


@dataclass(frozen=True)
class Stage:
    name: str
    key: str  # runs.counts[key]
    run: Callable[[StageContext], StageReport]
    uses_engine: bool = False  # retried on engine errors (the stage resumes per row)


STAGES: dict[str, Stage] = {s.name: s for s in [
    Stage("ingest", "ingest", ingest.run),
    Stage("screen-questions", "screen", screen.run),
    Stage("classify-domains", "domains", domains.run, uses_engine=True),
    Stage("synthesize", "synthesize", synthesize.run, uses_engine=True),
    Stage("agentic-rollouts", "agentic", agentic.run, uses_engine=True),  # runs when agentic.enabled
    Stage("rule-filters", "filters", filter.run),
    Stage("verify", "verify", verify.run),
    Stage("judge", "judges", judge.run, uses_engine=True),
    Stage("sql-rules", "sql_rules", sql_rules.run),
    Stage("style-metrics", "styles", style_metrics.run),
    Stage("difficulty", "difficulty", difficulty.run, uses_engine=True),
    Stage("rebalance-export", "export", export.run),
]}
