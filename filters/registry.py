"""The cheap rule set, built from the run config, in the order it runs."""

from __future__ import annotations

from filters.base import SampleFilter
from filters.length import LengthFilter
from filters.repetition import RepetitionFilter
from filters.structure import StructureFilter
from filters.truncation import TruncationFilter
from schemas.config import FilterConfig


def default_filters(cfg: FilterConfig) -> list[SampleFilter]:
    return [
        StructureFilter(),
        TruncationFilter(),
        LengthFilter(cfg.bounds_for),
        RepetitionFilter(cfg.max_dup_line_frac, cfg.max_top_2gram_frac, cfg.max_dup_10gram_frac),
    ]
