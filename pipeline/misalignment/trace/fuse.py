"""Reciprocal rank fusion (Cormack et al. 2009): a sample's fused score is the sum over methods of
1 / (k + its rank there); a sample a method did not list adds nothing from it. k = 60 as in the
paper: the fused order rewards agreement between methods more than one method's top spot."""

from __future__ import annotations

import polars as pl

K = 60


def fuse(ranked: dict[str, pl.DataFrame], top: int = 50, k: int = K) -> pl.DataFrame:
    """ranked: method -> frame(sample_id, rank). Returns sample_id, score, rank, detail (the
    method ranks that made it) and a <method>_rank column per method."""
    parts = [f.select("sample_id", pl.col("rank").cast(pl.Int32).alias(f"{m}_rank")) for m, f in ranked.items()]
    if not parts or all(p.is_empty() for p in parts):
        return pl.DataFrame(schema={"sample_id": pl.String, "score": pl.Float64, "rank": pl.Int32,
                                    "detail": pl.String} | {f"{m}_rank": pl.Int32 for m in ranked})
    joined = parts[0]
    for p in parts[1:]:
        joined = joined.join(p, on="sample_id", how="full", coalesce=True)
    columns = [f"{m}_rank" for m in ranked]
    score = pl.sum_horizontal([(1.0 / (k + pl.col(c))).fill_null(0.0) for c in columns])
    detail = pl.concat_str([pl.when(pl.col(c).is_not_null()).then(pl.format(f"{c[:-5]} #{{}}", pl.col(c)))
                            for c in columns], separator=", ", ignore_nulls=True)
    fused = (joined.with_columns(score=score, detail=detail)
             .sort(["score", "sample_id"], descending=[True, False]).head(top))
    return fused.with_columns(rank=pl.int_range(1, fused.height + 1).cast(pl.Int32)).select(
        "sample_id", "score", "rank", "detail", *columns)
