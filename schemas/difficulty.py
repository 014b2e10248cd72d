"""Settings of the difficulty stage (pipeline/stages/difficulty.py); every field has a default.

    signals                   which signals to compute: pass_rate, reasoning_length (cheap, from the
                              stored samples and verdicts), llm_rating (one LLM call per question,
                              with the judge rule `llm_rule`), irt (only where several models' verified
                              samples exist)
    combine                   rank_average: a `combined` row per question (see difficulty.py); none: no
                              combined row
    weights                   per-signal weight in the rank average (missing: 1; 0 leaves it out)
    reasoning_length_*_chars  the log scale of reasoning_length: min_chars -> 0, max_chars -> 1
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Signal = Literal["pass_rate", "reasoning_length", "llm_rating", "irt"]


class DifficultyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # llm_rating is off by default: it costs a model call per question, and the embedded 135M
    # model's ratings carry no signal (bench/difficulty_validation.py --llm).
    signals: list[Signal] = ["pass_rate", "reasoning_length", "irt"]
    combine: Literal["rank_average", "none"] = "rank_average"
    weights: dict[Signal, float] = {}
    reasoning_length_min_chars: int = Field(default=200, ge=1)
    reasoning_length_max_chars: int = Field(default=20000, ge=2)
    llm_rule: str = "difficulty_rating"  # a judge rule with target: question (name or YAML path)
    llm_batch_size: int = Field(default=64, ge=1)
    llm_max_parse_retries: int = Field(default=2, ge=0)
    # irt: a Rasch model needs at least this many models with verified samples (else no irt rows).
    irt_min_models: int = Field(default=2, ge=2)

    @model_validator(mode="after")
    def _check(self) -> "DifficultyConfig":
        if self.reasoning_length_min_chars >= self.reasoning_length_max_chars:
            raise ValueError("reasoning_length_min_chars must be below reasoning_length_max_chars")
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("difficulty weights must be non-negative")
        return self
