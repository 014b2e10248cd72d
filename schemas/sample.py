"""A synthesized sample and a verdict on it, as stored in `samples` and `verdicts`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Sample(BaseModel):
    sample_id: str
    question_id: str
    run_id: str
    sample_index: int
    gen_config_hash: str
    model: str
    requested_format: str
    prompt_hash: str
    messages: str  # the prompt as JSON, so any sample's prompt can be rebuilt exactly
    raw_text: str
    reasoning: str | None
    answer: str | None
    # "model": the model closed </think> itself; "forced_eos" / "forced_budget": the pipeline
    # closed it (s1-style budget forcing) after EOS or after the reasoning budget ran out.
    think_closed_by: str | None
    reasoning_finish: str | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    sampling_params: str  # JSON
    created_at: datetime


class Verdict(BaseModel):
    sample_id: str
    stage: str  # "filter", "verify", "judge"
    rule: str
    rule_version: int
    passed: bool
    score: float | None = None
    reason: str | None = None
    details: str | None = None  # JSON: raw judge output, token counts, ...
    run_id: str
    created_at: datetime
