"""A judge rule, declared in one YAML file under judges/rules/ (or a user's rules folder)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AppliesTo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    domains: list[str] | None = None  # None: every domain
    formats: list[str] | None = None  # None: every requested format


class Scale(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: int = 1
    max: int = 5
    anchors: dict[int, str]  # what each level means, shown to the judge

    @model_validator(mode="after")
    def _anchors_cover_scale(self) -> "Scale":
        if self.min >= self.max:
            raise ValueError(f"scale.min ({self.min}) must be below scale.max ({self.max})")
        outside = [k for k in self.anchors if not self.min <= k <= self.max]
        if outside:
            raise ValueError(f"anchors {outside} fall outside the scale {self.min}..{self.max}")
        return self


class JudgeSampling(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float = 0.0
    max_tokens: int = 160
    seed: int = 0


class JudgeRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: int = Field(ge=1)
    description: str
    applies_to: AppliesTo = AppliesTo()
    # Jinja template of the user message. Variables: question, reasoning, answer, reference,
    # requested_format, domain, rubric (the rendered scale), and the delimiters open/close.
    prompt: str
    scale: Scale
    threshold: int  # keep when score >= threshold
    rationale_max_chars: int = Field(default=160, ge=16, le=2000)
    sampling: JudgeSampling = JudgeSampling()

    @model_validator(mode="after")
    def _threshold_on_scale(self) -> "JudgeRule":
        if not self.scale.min <= self.threshold <= self.scale.max:
            raise ValueError(
                f"threshold {self.threshold} is outside the scale {self.scale.min}..{self.scale.max}"
            )
        return self

    def output_schema(self) -> dict:
        """JSON schema the engine is constrained to (bounded text, so a tiny model cannot loop)."""
        return {
            "type": "object",
            "properties": {
                "rationale": {"type": "string", "maxLength": self.rationale_max_chars},
                "score": {"type": "integer", "minimum": self.scale.min, "maximum": self.scale.max},
            },
            "required": ["rationale", "score"],
            "additionalProperties": False,
        }
