"""Trace rules by name. Kept apart from filters/registry.py on purpose: those rules run over
samples in the filter pass; these read trajectories (messages, tools), which samples do not have.
Names stay unique across both (tests/agentic/test_trace_rules.py checks)."""

from __future__ import annotations

from collections.abc import Mapping

from filters.trace.view import TraceRule

TRACE_RULES: dict[str, type[TraceRule]] = {}


def register_trace(cls: type[TraceRule]) -> type[TraceRule]:
    known = TRACE_RULES.get(cls.name)
    if known is not None and known is not cls:
        raise ValueError(f"trace rule name {cls.name!r} is taken by {known.__module__}.{known.__qualname__}")
    TRACE_RULES[cls.name] = cls
    return cls


def build_trace_rules(params: Mapping[str, dict] | None = None, disabled: tuple[str, ...] = ()) -> list[TraceRule]:
    """Every trace rule, with `params[name]` as its parameters; unknown names are an error."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(TRACE_RULES)) + sorted(set(disabled) - set(TRACE_RULES))
    if unknown:
        raise KeyError(f"no trace rule(s) {unknown}; known: {sorted(TRACE_RULES)}")
    return [cls(params.get(name) or {}) for name, cls in sorted(TRACE_RULES.items()) if name not in disabled]
