"""Agentic traces: a task, the tools an environment offers, and a trajectory (think, call a tool,
observe, think again) as the rollout produced it and the `trajectories` tables store it.

Trajectories are stored canonical: tool and parameter names as the environment declares them,
the tool calls as structured data. Render-time perturbations (renamed tools, call syntax, tool
docs; pipeline/agentic/perturb/) apply when a trajectory is exported, so the trace rules
(filters/trace/) read one shape whatever the model was shown.

Ids hash content (the same JSON hash as pipeline/hashing.stable_hash, which schemas cannot
import): the same task is the same id, and a trajectory id hashes its task, environment@version,
model, seed and perturbation choices, so a resumed rollout skips what exists.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
ENV_REF = re.compile(r"^[a-z][a-z0-9_]*@[0-9]+$")  # name@version, e.g. shop_db@1

VERIFICATION_KINDS = ("math", "choice", "text", "code_tests", "db_answer", "db_state", "none")
OUTCOME_STATUSES = ("answered", "step_cap", "length", "engine_error", "no_answer")


def stable_hash(*parts, length: int = 16) -> str:
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolSpec(_Strict):
    """One tool as the model sees it: name, description, parameters as a JSON schema (an object)."""

    name: str
    description: str = Field(min_length=1)
    parameters: dict = Field(default_factory=lambda: {"type": "object", "properties": {}})

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not TOOL_NAME.match(name):
            raise ValueError("a tool name is an identifier: a letter or _, then letters, digits, _ (<= 64)")
        return name

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, schema: dict) -> dict:
        if schema.get("type") != "object":
            raise ValueError("parameters must be a JSON schema of type 'object'")
        return schema


class ToolCall(_Strict):
    """A call the model made. A call the rollout could not parse keeps its raw text, with
    arguments None and parse_error saying why (a trace rule fails it; it is data, not a crash)."""

    id: str
    name: str | None = None
    arguments: dict | None = None
    raw: str | None = None           # the model's text for this call, when it was parsed from text
    parse_error: str | None = None


class Message(_Strict):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    reasoning: str | None = None                # the thinking before this turn's content / calls
    tool_calls: list[ToolCall] | None = None    # assistant turns only
    tool_call_id: str | None = None             # tool turns: the call answered
    name: str | None = None                     # tool turns: the tool's name
    tool_status: Literal["ok", "error", "timeout"] | None = None  # tool turns: how the call went

    @model_validator(mode="after")
    def _shape(self) -> "Message":
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only an assistant turn makes tool calls")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool turn names the call it answers (tool_call_id)")
        return self


class Verification(_Strict):
    """How a task's outcome is checked. math / choice / text: the final answer against `reference`
    (the existing verifiers); code_tests: `tests` pass in the sandbox; db_answer: the final answer
    against `reference`, computed by running `reference_query`; db_state: the environment's
    state_hash equals `reference`; none: not verifiable (tasks where no tool fits, say)."""

    kind: Literal[VERIFICATION_KINDS]
    reference: str | None = None
    reference_query: str | None = None
    tests: list[str] | None = None

    @model_validator(mode="after")
    def _needs(self) -> "Verification":
        if self.kind == "code_tests" and not self.tests:
            raise ValueError("code_tests verification needs tests")
        if self.kind not in ("code_tests", "none") and self.reference is None:
            raise ValueError(f"{self.kind} verification needs a reference")
        return self


class Task(_Strict):
    """Something to do with tools. From a pool (source 'pool', question_id set) or generated
    (source 'generated', generator 'name@version' and its seed)."""

    source: Literal["pool", "generated"]
    question_id: str | None = None
    generator: str | None = None
    generator_seed: int | None = None
    domain: str
    text: str = Field(min_length=1)
    environment: str                             # name@version
    tools: list[str] = Field(min_length=1)       # the environment's tools this task may use
    verification: Verification

    @field_validator("environment")
    @classmethod
    def _env(cls, ref: str) -> str:
        if not ENV_REF.match(ref):
            raise ValueError("environment must be name@version, e.g. shop_db@1")
        return ref

    @model_validator(mode="after")
    def _origin(self) -> "Task":
        if self.source == "pool" and not self.question_id:
            raise ValueError("a pool task names its question_id")
        if self.source == "generated" and not self.generator:
            raise ValueError("a generated task names its generator (name@version)")
        return self

    @property
    def task_id(self) -> str:
        return stable_hash("task", self.model_dump(mode="json"))


class Outcome(_Strict):
    status: Literal[OUTCOME_STATUSES]
    final_answer: str | None = None
    correct: bool | None = None      # None: not verified (yet)
    detail: str | None = None


class Trajectory(_Strict):
    task: Task
    environment: str                 # name@version the rollout ran in
    seed: int
    model: str
    perturbations: dict[str, Any] = Field(default_factory=dict)  # axis -> choice (JSON values)
    tools: list[ToolSpec]            # the tools offered, canonical names
    messages: list[Message]
    outcome: Outcome
    steps: int = Field(ge=0)         # tool calls made
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    final_state_hash: str | None = None

    @property
    def task_id(self) -> str:
        return self.task.task_id

    @property
    def trajectory_id(self) -> str:
        return trajectory_id_for(self.task_id, self.environment, self.model, self.seed, self.perturbations)


def trajectory_id_for(task_id: str, environment: str, model: str, seed: int, perturbations: dict) -> str:
    """Known before the rollout runs, so a resumed run skips trajectories that exist."""
    return stable_hash("trajectory", task_id, environment, model, seed, perturbations)
