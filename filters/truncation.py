"""Truncation: the answer or the reasoning stopped at its token limit instead of finishing."""

from __future__ import annotations

import polars as pl

from filters.base import SampleFilter
from filters.exprs import evaluate, first_failure
from filters.registry import register


@register
class TruncationFilter(SampleFilter):
    name = "truncation"
    version = 1
    needs = ("finish_reason", "reasoning_finish")

    def check_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        self.require(batch)
        return evaluate(batch, first_failure([
            (pl.col("finish_reason") == "length", "answer cut at max_tokens (finish_reason=length)"),
            (pl.col("reasoning_finish") == "length", "reasoning ran out of its token budget"),
        ]))
