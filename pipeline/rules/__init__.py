"""The rules of a run's verdict passes, built from its config (filters/registry.py), plus the
ones that live in pipeline/ because they run processes (code_tests) or need run state
(decontam_answer: the run's benchmark index)."""

from __future__ import annotations

from filters.base import SampleFilter
from filters.decontam_answer import AnswerContamination
from filters.screening.decontam import NgramIndex
from filters.registry import build_rules, config_errors
from pipeline.rules import code_tests  # noqa: F401 - registers code_tests

PASSES = ("filter", "decontam", "verify")  # the verdict passes, in run order


def pass_rules(config, stage: str, index: NgramIndex | None = None) -> list[SampleFilter]:
    """The rules of one pass; decontam needs the benchmark index (and is empty without answer checks)."""
    if stage not in PASSES:
        raise ValueError(f"no verdict pass named {stage!r}; passes: {PASSES}")
    extra = []
    if stage == "decontam":
        if not config.decontamination.check_answers:
            return []
        if index is None:
            raise ValueError("the decontam pass needs the run's benchmark index")
        extra = [AnswerContamination(index)]
    return build_rules(config, stage, extra)


def rule_config_errors(config) -> list[tuple[tuple, str]]:
    return config_errors(config, also_known=[AnswerContamination.name])
