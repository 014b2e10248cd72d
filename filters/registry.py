"""The cheap rule set, built from the run config, in the order it runs."""

from __future__ import annotations

from collections.abc import Mapping

from filters.base import SampleFilter
from filters.completeness import CompletenessFilter
from filters.format_compliance import FormatComplianceFilter
from filters.judge_bait import JudgeBaitFilter
from filters.language import LanguageFilter
from filters.length import LengthFilter
from filters.redundancy import RedundancyFilter
from filters.repetition import RepetitionFilter
from filters.self_identity import SelfIdentityFilter
from filters.structure import StructureFilter
from filters.truncation import TruncationFilter
from schemas.config import FilterConfig


def cheap_filters(cfg: FilterConfig, custom_styles: Mapping[str, str] | None = None) -> list[SampleFilter]:
    """custom_styles: config-defined answer styles (name -> detecting regex) for format_compliance.

    Each rule records the config values it was built from (SampleFilter.configured): they are
    part of its config hash, so changing one threshold recomputes that rule's verdicts only."""
    repetition, redundancy = cfg.repetition.model_dump(), cfg.redundancy.model_dump()
    completeness, language = cfg.completeness.model_dump(), cfg.language.model_dump()
    rules: list[SampleFilter] = [
        StructureFilter(),
        TruncationFilter(),
        LengthFilter(cfg.bounds_for).configured(length={k: v.model_dump() for k, v in cfg.length.items()}),
        RepetitionFilter(**repetition).configured(**repetition),
        RedundancyFilter(**redundancy).configured(**redundancy),
        CompletenessFilter(**completeness).configured(**completeness),
        LanguageFilter(**language).configured(**language),
        SelfIdentityFilter(),
        JudgeBaitFilter(),
        FormatComplianceFilter(custom_styles).configured(custom_styles=dict(custom_styles or {})),
    ]
    if cfg.datatrove:
        from filters.datatrove_adapter import FromDatatrove

        rules += [FromDatatrove.from_config(d).configured(**d.model_dump(mode="json")) for d in cfg.datatrove]
    unknown = set(cfg.disabled) - {r.name for r in rules}
    if unknown:
        raise ValueError(f"filters.disabled names unknown rules {sorted(unknown)}; known: {[r.name for r in rules]}")
    return [r for r in rules if r.name not in cfg.disabled]
