"""A bad case: one bad model behaviour (a prompt and the bad output), the start of the loop
from a bad behaviour to the training samples behind it. Cases double as a regression set."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field, field_validator

LABELS = ("dirty", "clean")
TRACE_METHODS = ("signature", "lexical", "embedding", "fused")


def case_id_for(prompt: str, bad_output: str) -> str:
    """The same prompt and output are the same case (adding it twice changes nothing)."""
    return hashlib.sha256(f"{prompt}\x00{bad_output}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


class BadCase(BaseModel):
    """One line of a bad-cases JSONL (or the options of `curate badcases add`)."""
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, description="what the model was asked")
    bad_output: str = Field(min_length=1, description="what it answered (the bad behaviour)")
    expected: str | None = Field(None, description="what a good answer says (a reference answer, or a note)")
    tags: list[str] = Field(default_factory=list, description="e.g. loop, wrong-answer, self-identity")
    model: str | None = Field(None, description="the model or checkpoint that produced it")

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, tags: list[str]) -> list[str]:
        return sorted({t.strip() for t in tags if t.strip()})

    @property
    def case_id(self) -> str:
        return case_id_for(self.prompt, self.bad_output)
