"""Difficulty stage (the simplest honest signal; 0 = easy, 1 = hard).

pass_rate (v1): where a reference or tests exist, 1 - share of the question's samples that the
  verifier accepted (answer_match, code_tests). With n=2 this takes only the values 0, 0.5
  and 1: coarse but real.
reasoning_length (v1): otherwise (no reference), the median reasoning length of the
  question's samples, scaled by 4,000 characters and capped at 1. A weak proxy: longer
  reasoning suggests a harder question, but a looping model also writes long.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipeline.store import Store, now

_LENGTH_SCALE_CHARS = 4000.0


@dataclass
class DifficultyReport:
    pass_rate: int
    reasoning_length: int


def score_difficulty(store: Store, run_id: str, question_ids: list[str]) -> DifficultyReport:
    probe = pl.DataFrame({"question_id": question_ids}, schema={"question_id": pl.String})
    by_pass = store.frame("""
        SELECT s.question_id, 1 - avg(v.passed::INT) AS score, count(*) AS n_samples,
               sum(v.passed::INT) || '/' || count(*) || ' samples correct' AS detail
        FROM samples s JOIN latest_verdicts v ON v.sample_id = s.sample_id AND v.rule IN ('answer_match', 'code_tests')
        WHERE s.question_id IN (SELECT question_id FROM probe)
        GROUP BY s.question_id
    """, probe=probe).with_columns(method=pl.lit("pass_rate"))
    by_length = store.frame(f"""
        SELECT s.question_id, least(1.0, median(length(coalesce(s.reasoning, ''))) / {_LENGTH_SCALE_CHARS}) AS score,
               count(*) AS n_samples,
               'median reasoning ' || median(length(coalesce(s.reasoning, '')))::INT || ' chars' AS detail
        FROM samples s
        WHERE s.question_id IN (SELECT question_id FROM probe)
          AND s.question_id NOT IN (SELECT question_id FROM by_pass)
        GROUP BY s.question_id
    """, probe=probe, by_pass=by_pass.select("question_id")).with_columns(method=pl.lit("reasoning_length"))
    frame = pl.concat([by_pass, by_length], how="diagonal").with_columns(
        version=pl.lit(1, pl.Int32), run_id=pl.lit(run_id), created_at=pl.lit(now()),
        n_samples=pl.col("n_samples").cast(pl.Int32),
    )
    # New samples change a question's difficulty: replace the row for this method+version.
    store.replace("question_difficulty", frame)
    return DifficultyReport(by_pass.height, by_length.height)
