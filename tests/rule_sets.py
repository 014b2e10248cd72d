"""The rule sets tests build from a config (pipeline/rules.py pass_rules), in short."""

from __future__ import annotations

from pipeline.rules import pass_rules
from schemas.config import CurateConfig, FilterConfig


def cheap_rules(filters: FilterConfig | dict | None = None, **config) -> list:
    """The filter pass's rules for these `filters:` settings (other config sections as keywords)."""
    return pass_rules(CurateConfig(filters=filters or FilterConfig(), **config), "filter")


def verify_rules(filters: FilterConfig | dict | None = None) -> list:
    return pass_rules(CurateConfig(filters=filters or FilterConfig()), "verify")


def by_name(items, attr: str = "name") -> dict:
    return {getattr(i, attr): i for i in items}


def run_filters(store, rules, run_id: str, stage: str = "filter", **kwargs):
    """One verdict pass of these rules (pipeline/verdict_loop.py), as the stages run it."""
    from pipeline.verdict_loop import run_verdicts

    return run_verdicts(store, rules, run_id, stage, **kwargs)


def run_verify(store, run_id: str, config: CurateConfig | None = None, **kwargs):
    """The verify stage on a store; its counts as attributes (checked, correct, code_checked, ...)."""
    from types import SimpleNamespace

    from pipeline.stage import RunState, StageContext
    from pipeline.stages import verify

    ctx = StageContext(store, RunState(run_id, config or CurateConfig()), **kwargs)
    return SimpleNamespace(**verify.run(ctx).counts)
