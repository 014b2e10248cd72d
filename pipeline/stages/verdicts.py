"""What the verdict-writing stages share: finding unjudged samples and writing verdicts."""

from __future__ import annotations

import polars as pl

from pipeline.store import Store, now

VERDICT_SCHEMA = {
    "sample_id": pl.String, "stage": pl.String, "rule": pl.String, "rule_version": pl.Int32,
    "passed": pl.Boolean, "score": pl.Float64, "reason": pl.String, "details": pl.String,
    "run_id": pl.String, "created_at": pl.Datetime("us", "UTC"),
}

# The columns a rule may read: the sample's parts plus its question's.
SAMPLE_VIEW = """
SELECT s.sample_id, s.question_id, s.requested_format, s.raw_text, s.reasoning, s.answer,
       s.think_closed_by, s.reasoning_finish, s.finish_reason, s.completion_tokens,
       q.domain, q.text AS question_text, q.reference_answer, q.answer_type, q.level, q.tests
FROM samples s JOIN questions q USING (question_id)
"""


def unjudged(store: Store, rule: str, version: int, where: str = "TRUE", limit: int | None = None) -> pl.DataFrame:
    """Samples with no verdict from this rule at this version (optionally narrowed by `where`)."""
    sql = f"""
        SELECT * FROM ({SAMPLE_VIEW}) x
        WHERE {where} AND NOT EXISTS (
            SELECT 1 FROM verdicts v WHERE v.sample_id = x.sample_id AND v.rule = ? AND v.rule_version = ?)
        ORDER BY sample_id
    """ + (f" LIMIT {int(limit)}" if limit else "")
    return store.frame(sql, [rule, version])


def verdict_frame(sample_ids: list[str], results: pl.DataFrame, *, stage: str, rule: str, version: int,
                  run_id: str, details: list[str | None] | None = None) -> pl.DataFrame:
    n = len(sample_ids)
    return pl.DataFrame(
        {
            "sample_id": sample_ids, "stage": [stage] * n, "rule": [rule] * n, "rule_version": [version] * n,
            "passed": results["passed"], "score": results["score"], "reason": results["reason"],
            "details": details or [None] * n, "run_id": [run_id] * n, "created_at": [now()] * n,
        },
        schema=VERDICT_SCHEMA,
    )
