"""Small polars helpers for writing rules as "the first failing condition gives the reason"."""

from __future__ import annotations

import polars as pl


def first_failure(conditions: list[tuple[pl.Expr, pl.Expr | str]]) -> pl.Expr:
    """A reason expression: the reason of the first condition that holds, else null (passed)."""
    expr = None
    for condition, reason in reversed(conditions):
        reason = pl.lit(reason) if isinstance(reason, str) else reason
        expr = pl.when(condition).then(reason).otherwise(expr if expr is not None else pl.lit(None, pl.String))
    return expr


def evaluate(batch: pl.DataFrame, reason: pl.Expr, score: pl.Expr | None = None) -> pl.DataFrame:
    out = batch.select(reason=reason, score=(score if score is not None else pl.lit(None)).cast(pl.Float64))
    return out.select(passed=pl.col("reason").is_null(), score="score", reason="reason")


def found(text: pl.Expr, pattern: str, reason: str) -> tuple[pl.Expr, pl.Expr]:
    """A (condition, reason) pair for first_failure: `pattern` occurs in `text`; `reason` has
    one {} that receives the first match."""
    return text.str.contains(pattern), pl.format(reason, text.str.extract(f"({pattern})", 1))
