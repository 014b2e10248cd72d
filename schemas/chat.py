"""Shapes of a chat request and its result, shared by the engines and the judges."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sampling:
    n: int = 1
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: int | None = None  # return the top-k log probabilities of each generated token

    def as_dict(self) -> dict:
        return {
            "n": self.n, "temperature": self.temperature, "top_p": self.top_p,
            "max_tokens": self.max_tokens, "seed": self.seed, "stop": list(self.stop),
        } | ({"logprobs": self.logprobs} if self.logprobs else {})


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict]
    sampling: Sampling = Sampling()
    # Text the assistant turn starts with; the model continues it (e.g. "<think>\n").
    prefill: str | None = None
    # Constrain the output to this JSON schema (vLLM structured outputs / response_format).
    json_schema: dict | None = None
    # Constrain the output to exactly one of these strings (vLLM structured outputs' choice).
    # For a one-word answer: the engine-wide compact JSON (no free whitespace) pushes a small
    # model off its own '{"key": "value"}' habit, and its choice then follows the grammar.
    choice: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.json_schema is not None and self.choice is not None:
            raise ValueError("a request is constrained by json_schema or by choice, not both")


@dataclass
class Completion:
    text: str
    finish_reason: str  # "stop" | "length" | ...
    completion_tokens: int
    stop_reason: str | int | None = None  # the stop string that ended the text, if any
    reasoning: str | None = None  # a server's separate reasoning field, when it has one
    # With Sampling.logprobs: per generated token, its top candidates (decoded text -> log probability).
    top_logprobs: list[dict[str, float]] | None = None


@dataclass
class ChatResult:
    completions: list[Completion] = field(default_factory=list)
    prompt_tokens: int = 0
    error: str | None = None  # set when the request failed after all retries


ProgressFn = Callable[[int], None]


class ChatBackend:
    """What judges and stages need from an engine (see pipeline.engines.base.Engine)."""

    model_name: str

    def chat(self, requests: list[ChatRequest], on_progress: ProgressFn | None = None) -> list[ChatResult]:
        raise NotImplementedError
