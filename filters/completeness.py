"""Completeness: reasoning too short for the question's difficulty skips steps.

The minimum grows with the question's source level (0..1, e.g. MATH level / 5; null when the
pool has none): min_chars = at_level_0 + (at_level_1 - at_level_0) * level. The defaults pass
every correct labelled Qwen2.5-Math response (shortest: 411 chars at MATH level 1, 706 at 5).
"""

from __future__ import annotations

import polars as pl

from filters.base import RuleParams, SampleFilter
from filters.exprs import evaluate, first_failure
from filters.registry import register


@register
class CompletenessFilter(SampleFilter):
    name = "completeness"
    version = 1
    needs = ("reasoning", "level")

    class Params(RuleParams):
        min_chars_at_level_0: int = 200
        min_chars_at_level_1: int = 600

    def __init__(self, params=None, /, **fields):
        super().__init__(params, **fields)
        self.low, self.high = self.params.min_chars_at_level_0, self.params.min_chars_at_level_1

    def check_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        self.require(batch)
        length = pl.col("reasoning").fill_null("").str.strip_chars().str.len_chars()
        level = pl.col("level").cast(pl.Float64)
        needed = (pl.lit(float(self.low)) + (self.high - self.low) * level.clip(0.0, 1.0)).round(0)
        reason = first_failure([
            (level.is_not_null() & (length < needed),
             pl.format("reasoning of {} chars is too short for a level-{} question (needs {})", length,
                       level.round(2), needed.cast(pl.Int64))),
        ])
        return evaluate(batch, reason, length)
