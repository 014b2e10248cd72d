"""Tool environments by name@version (see base.py for the contract)."""

from __future__ import annotations

from pipeline.agentic.envs.base import Environment, Observation, argument_error
from pipeline.agentic.envs.calculator import Calculator
from pipeline.agentic.envs.python_exec import PythonExecutor
from pipeline.agentic.envs.shop_db import ShopDb

ENVIRONMENTS: dict[str, type[Environment]] = {cls.ref(): cls for cls in (PythonExecutor, Calculator, ShopDb)}


def make(ref: str, **options) -> Environment:
    """A fresh environment for one rollout; KeyError naming the known ones."""
    try:
        cls = ENVIRONMENTS[ref]
    except KeyError:
        raise KeyError(f"no environment {ref!r}; known: {sorted(ENVIRONMENTS)}") from None
    return cls(**options)


__all__ = ["ENVIRONMENTS", "Environment", "Observation", "argument_error", "make"]
