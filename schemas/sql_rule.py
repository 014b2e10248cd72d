"""A SQL rule: a predicate over stored sample features, declared in one YAML file.

    name: long_code_answers
    version: 1
    description: Code answers over 4,000 characters ramble; the loop cases came from them.
    where: domain = 'code' AND answer_chars > 4000

A sample the `where` clause matches FAILS the rule. The clause is a DuckDB expression over the
columns of the `sample_features` view (and `failed_rules`, `judge_scores`, `kept`,
`difficulty` from `sample_verdict_features`); it runs on a read-only connection with external
access off (pipeline/misalignment/sql_rules.py). A rule counts only once enabled
(`curate rules enable`); `curate rules preview` shows what it would remove first.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")


class SqlRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="snake_case, unique among rules")
    version: int = Field(1, ge=1, description="bump when the clause changes meaning")
    description: str = Field(min_length=1)
    where: str = Field(min_length=1, description="DuckDB expression over sample_features; a match fails the rule")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not NAME.match(name):
            raise ValueError("must be snake_case: a lowercase letter, then letters, digits or _ (2-63 characters)")
        return name
