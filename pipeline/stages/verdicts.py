"""What the verdict-writing stages share: finding unjudged samples and writing verdicts."""

from __future__ import annotations

import polars as pl

from pipeline.store import Store, now

VERDICT_SCHEMA = {
    "sample_id": pl.String, "stage": pl.String, "rule": pl.String, "rule_version": pl.Int32,
    "passed": pl.Boolean, "score": pl.Float64, "reason": pl.String, "details": pl.String,
    "run_id": pl.String, "created_at": pl.Datetime("us", "UTC"),
    "prompt_tokens": pl.Int32, "completion_tokens": pl.Int32,
}

# The columns a rule may read: the sample's parts plus its question's.
SAMPLE_VIEW = """
SELECT s.sample_id, s.question_id, s.requested_format, s.raw_text, s.reasoning, s.answer,
       s.think_closed_by, s.reasoning_finish, s.finish_reason, s.completion_tokens,
       q.domain, q.text AS question_text, q.reference_answer, q.answer_type, q.level, q.tests
FROM samples s JOIN questions q USING (question_id)
"""


def unjudged(store: Store, rule: str, version: int, where: str = "TRUE", limit: int | None = None,
             where_params: list | None = None) -> pl.DataFrame:
    """Samples with no verdict from this rule at this version (optionally narrowed by `where`,
    an SQL condition on SAMPLE_VIEW's columns as `x`, with `where_params` for its ? marks)."""
    sql = f"""
        SELECT * FROM ({SAMPLE_VIEW}) x
        WHERE {where} AND NOT EXISTS (
            SELECT 1 FROM verdicts v WHERE v.sample_id = x.sample_id AND v.rule = ? AND v.rule_version = ?)
        ORDER BY sample_id
    """ + (f" LIMIT {int(limit)}" if limit else "")
    return store.frame(sql, [*(where_params or []), rule, version])


def verdict_frame(sample_ids: list[str], results: pl.DataFrame, *, stage: str, rule: str, version: int,
                  run_id: str, details: list[str | None] | None = None,
                  tokens: list[tuple[int, int]] | None = None) -> pl.DataFrame:
    n = len(sample_ids)
    return pl.DataFrame(
        {
            "sample_id": sample_ids, "stage": [stage] * n, "rule": [rule] * n, "rule_version": [version] * n,
            "passed": results["passed"], "score": results["score"], "reason": results["reason"],
            "details": details or [None] * n, "run_id": [run_id] * n, "created_at": [now()] * n,
            "prompt_tokens": [t[0] for t in tokens] if tokens else [None] * n,
            "completion_tokens": [t[1] for t in tokens] if tokens else [None] * n,
        },
        schema=VERDICT_SCHEMA,
    )
