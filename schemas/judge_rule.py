"""A judge rule, declared in one YAML file under judges/rules/ (or a user's rules folder).

    name, version, description            what it judges; bump version when the rule changes
    applies_to                            which samples: domains, formats, reference needed,
                                          after which stages, only undecided, only uncertain
    prompt                                Jinja template of the user message (sample parts
                                          between delimiters); the rubric is the system message
    scale, threshold                      integer scale with an anchor per level; keep >= threshold
    examples                              optional graded examples shown in the rubric
    flags                                 optional named flags the judge may raise
    calibration                           optional: refuse to run until an eval meets min_agreement
    engine, sampling                      optional own engine (e.g. a larger judge model); sampling
    target                                sample (default: the judge stage), question (rated once
                                          per question, e.g. difficulty_rating; see
                                          pipeline/difficulty/llm_rating.py) or trajectory (an agentic
                                          trace, judged by the judge stage into trajectory_verdicts;
                                          see pipeline/agentic/judge.py)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.config import EngineConfig


# The stages that write trajectory_verdicts: the outcome check, the trace rules, trajectory judges.
TRAJECTORY_STAGES = ("outcome", "trace", "judge")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Uncertain(_Strict):
    """Judge only samples whose earlier judge score sits in [min_score, max_score]."""

    rule: str
    min_score: float
    max_score: float


class AppliesTo(_Strict):
    domains: list[str] | None = None  # None: every domain
    formats: list[str] | None = None  # None: every requested format
    requires_reference: bool = False  # only samples whose question has a reference answer
    # Stages whose verdicts must all have passed first (cheap rules, verification, earlier judges).
    # A trajectory rule names trajectory stages: outcome, trace (the trace rules), judge.
    after_stages: list[str] = ["filter", "decontam", "verify"]
    only_undecided: bool = True  # skip samples any earlier rule of any stage already rejected
    uncertain: Uncertain | None = None

    def field_tests(self) -> list[tuple[str, list[str] | None]]:
        """What this selects by a row's own fields (a sample's, or a question's): (column, allowed
        values), allowed None meaning "not null". The one definition behind sql() and matches();
        after_stages, only_undecided and uncertain read verdicts (pipeline.stages.judge.eligible)."""
        tests = [(column, allowed) for column, allowed in (("domain", self.domains),
                                                           ("requested_format", self.formats)) if allowed is not None]
        if self.requires_reference:
            tests.append(("reference_answer", None))
        return tests

    def sql(self, alias: str) -> tuple[list[str], list]:
        """field_tests as SQL conditions on table `alias` (to be ANDed) and their parameters, in order."""
        where: list[str] = []
        params: list = []
        for column, allowed in self.field_tests():
            if allowed is None:
                where.append(f"{alias}.{column} IS NOT NULL")
            else:
                where.append(f"{alias}.{column} IN ({', '.join('?' * len(allowed))})")
                params += allowed
        return where, params

    def matches(self, row: Mapping) -> bool:
        """field_tests on a row held in memory (a missing key counts as null, as SQL would)."""
        return all(row.get(column) is not None if allowed is None else row.get(column) in allowed
                   for column, allowed in self.field_tests())


class Scale(_Strict):
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


class GradedExample(_Strict):
    """A sample with the verdict the rule should give it, shown to the judge in the rubric."""

    question: str
    reasoning: str = ""
    answer: str
    reference: str | None = None
    score: int
    rationale: str


class JudgeSampling(_Strict):
    temperature: float = 0.0
    max_tokens: int = 160
    seed: int = 0


class Calibration(_Strict):
    labels: str  # a labelled set (pairwise like LLMBar, or pointwise JSONL); relative to the rule file
    min_agreement: float = Field(ge=0, le=1)
    limit: int | None = None  # evaluate on the first N items only
    # Which eval counts: the rule judging each output alone (pointwise, as the judge stage uses it)
    # or comparing both (pairwise mode; pairwise label sets only).
    mode: Literal["pointwise", "pairwise", "pairwise_letter"] = "pointwise"


class JudgeRule(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: int = Field(ge=1)
    description: str
    applies_to: AppliesTo = AppliesTo()
    # Jinja template of the user message. Variables: question, reasoning, answer, reference,
    # requested_format, format_instruction, domain, and the delimiters open/close.
    prompt: str
    scale: Scale
    threshold: int  # keep when score >= threshold
    rationale_max_chars: int = Field(default=160, ge=16, le=2000)
    flags: list[str] = []  # e.g. [unsupported_claim, arithmetic_error]
    # Graded examples in the shared system message: anchors for a small judge, and a long
    # shared prefix that vLLM's prefix cache computes once per rule.
    examples: list[GradedExample] = []
    calibration: Calibration | None = None
    engine: EngineConfig | None = None  # None: the run's engine
    sampling: JudgeSampling = JudgeSampling()
    # What one verdict is about. "sample": the judge stage judges each sample (the default).
    # "question": the rule rates questions, not samples (its prompt sees question, reference and
    # domain only; the judge stage must not run it); applies_to.formats/uncertain do not apply.
    # "trajectory": the rule judges agentic traces (its prompt sees question, steps, answer,
    # reference, domain, environment); applies_to.after_stages names trajectory stages.
    target: Literal["sample", "question", "trajectory"] = "sample"

    @model_validator(mode="after")
    def _threshold_on_scale(self) -> "JudgeRule":
        if not self.scale.min <= self.threshold <= self.scale.max:
            raise ValueError(
                f"threshold {self.threshold} is outside the scale {self.scale.min}..{self.scale.max}"
            )
        for i, ex in enumerate(self.examples):
            if not self.scale.min <= ex.score <= self.scale.max:
                raise ValueError(f"examples[{i}].score {ex.score} is outside the scale {self.scale.min}..{self.scale.max}")
        if self.target == "question" and (self.applies_to.formats is not None or self.applies_to.uncertain is not None):
            raise ValueError("a question rule (target: question) cannot select by applies_to.formats or "
                             "applies_to.uncertain: those are properties of samples")
        if self.target == "trajectory":
            a = self.applies_to
            if a.formats is not None or a.uncertain is not None:
                raise ValueError("a trajectory rule (target: trajectory) cannot select by applies_to.formats or "
                                 "applies_to.uncertain: those are properties of samples")
            unknown = sorted(set(a.after_stages) - set(TRAJECTORY_STAGES))
            if unknown:
                raise ValueError(f"applies_to.after_stages {unknown}: a trajectory rule waits for trajectory stages "
                                 f"only, {list(TRAJECTORY_STAGES)} (write them out: the default is the samples')")
        return self

    def output_schema(self) -> dict:
        """JSON schema the engine is constrained to (bounded text, so a tiny model cannot loop)."""
        properties: dict = {
            "rationale": {"type": "string", "maxLength": self.rationale_max_chars},
            "score": {"type": "integer", "minimum": self.scale.min, "maximum": self.scale.max},
        }
        required = ["rationale", "score"]
        if self.flags:
            # No uniqueItems: vLLM's structured-output backends reject it; parse_output dedups.
            properties["flags"] = {"type": "array", "items": {"type": "string", "enum": self.flags},
                                   "maxItems": len(self.flags)}
            required.append("flags")
        return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
