"""The question_difficulty row shape, shared by the difficulty stage (difficulty.py) and the LLM
rating (difficulty_llm.py); its own module so that difficulty_llm need not import difficulty."""

from __future__ import annotations

import polars as pl

from pipeline.store import now
from schemas.rows import QUESTION_DIFFICULTY

ROW_SCHEMA = QUESTION_DIFFICULTY


def rows(frame: pl.DataFrame, method: str, version: int, run_id: str, config_hash: str | None = None) -> pl.DataFrame:
    """question_id, score, n_samples, detail -> question_difficulty rows. config_hash: what an
    LLM rating was made under (signals computed from the store have none: they are recomputed
    every run, and a row is rewritten only when its value changed)."""
    return frame.select("question_id", "score", "n_samples", "detail").with_columns(
        method=pl.lit(method), version=pl.lit(version), run_id=pl.lit(run_id), created_at=pl.lit(now()),
        config_hash=pl.lit(config_hash, dtype=pl.String),
    ).cast({k: v for k, v in ROW_SCHEMA.items() if k != "created_at"}).select(list(ROW_SCHEMA))
