"""A question from a pool, as stored in the `questions` table."""

from __future__ import annotations

import hashlib
import re

from pydantic import BaseModel, Field

DOMAINS = ("math", "code", "science", "logic", "other")


def question_id_for(text: str) -> str:
    """Stable content hash: the same question text (modulo whitespace) gets the same id."""
    normalized = re.sub(r"\s+", " ", text).strip()
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:16]


class Question(BaseModel):
    question_id: str
    source: str
    domain: str
    subdomain: str | None = None
    text: str = Field(min_length=1)
    reference_answer: str | None = None
    # How the reference is checked: "math" (Math-Verify), "choice" / "text" (normalized exact
    # match), "code" (tests run in a sandbox), or None when there is no reference.
    answer_type: str | None = None
    tests: list[str] | None = None
    level: float | None = None  # the source's difficulty scaled to 0..1 (None: unknown)
    pool_path: str
    pool_line: int


class QuarantineRow(BaseModel):
    pool_path: str
    line: int | None
    field: str | None
    error: str
    raw: str | None = None
