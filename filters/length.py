"""Length bounds on reasoning and answer, per domain (configurable), and near-empty answers."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from filters.base import SampleFilter
from filters.exprs import evaluate, first_failure
from schemas.config import LengthBounds


class LengthFilter(SampleFilter):
    name = "length"
    version = 2
    needs = ("domain", "reasoning", "answer")

    def __init__(self, bounds_for: Callable[[str], LengthBounds]):
        self.bounds_for = bounds_for

    def check_batch(self, batch: pl.DataFrame) -> pl.DataFrame:
        self.require(batch)
        domains = batch["domain"].fill_null("").unique().to_list()
        bounds = pl.DataFrame([{"domain": d, **self.bounds_for(d).model_dump()} for d in domains],
                              schema_overrides={"domain": pl.String})
        joined = batch.select("domain", "reasoning", "answer").with_columns(pl.col("domain").fill_null("")).join(
            bounds, on="domain", how="left", maintain_order="left")
        r = pl.col("reasoning").fill_null("").str.strip_chars().str.len_chars()
        a = pl.col("answer").fill_null("").str.strip_chars().str.len_chars()
        reason = first_failure([
            (r < pl.col("min_reasoning_chars"), pl.format("reasoning too short: {} < {} chars", r, "min_reasoning_chars")),
            (r > pl.col("max_reasoning_chars"), pl.format("reasoning too long: {} > {} chars", r, "max_reasoning_chars")),
            (a < pl.col("min_answer_chars"), pl.format("answer too short: {} < {} chars", a, "min_answer_chars")),
            (~pl.col("answer").fill_null("").str.contains(r"[^\W_]"), "answer has no letters or digits"),
            (a > pl.col("max_answer_chars"), pl.format("answer too long: {} > {} chars", a, "max_answer_chars")),
        ])
        return evaluate(joined, reason, r)
