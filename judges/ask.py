"""Ask a judge: send schema-constrained requests, parse the replies, retry what does not parse.

Shared by pointwise judging (judges/run.py) and pairwise comparison (judges/pairwise.py): a
reply that does not parse is retried (sampled, another seed) up to `max_retries` times and then
returned as an error with its raw text; it is never read as a pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from schemas.chat import ChatBackend, ChatRequest, Completion, Sampling
from schemas.judge_rule import JudgeRule

RETRY_TEMPERATURE = 0.7
T = TypeVar("T")


@dataclass
class Asked(Generic[T]):
    outcome: T  # the parse of the last reply (or of the engine error)
    raw: list[str] = field(default_factory=list)  # every reply, in order
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0


def send_warm(engine: ChatBackend, requests: list[ChatRequest], on_progress=None) -> list:
    """Requests that share a long prefix (a rule's rubric, a classifier's instructions). Sent in one
    batch, each would prefill it again: the prefix cache only holds what a finished step computed.
    So the first request goes alone, and the rest find the prefix cached (on a 2-core CPU a
    700-token rubric costs about 20 s of prefill per request otherwise)."""
    if len(requests) < 3:
        return engine.chat(requests, on_progress)
    return engine.chat(requests[:1], on_progress) + engine.chat(requests[1:], on_progress)


def temperature(rule: JudgeRule, attempt: int) -> float:
    """A retry at temperature 0 would repeat the failed output whatever the seed: retries sample."""
    return rule.sampling.temperature if attempt == 0 else max(rule.sampling.temperature, RETRY_TEMPERATURE)


def ask(rule: JudgeRule, conversations: list[list[dict]], schema: dict | None, engine: ChatBackend,
        parse: Callable[[Completion], T], failed: Callable[[str], T], ok: Callable[[T], bool],
        max_retries: int = 2, on_progress: Callable[[int], None] | None = None,
        choice: tuple[str, ...] | None = None, logprobs: int | None = None) -> list[Asked[T]]:
    """One Asked per conversation, constrained by the JSON `schema` or to one of `choice`.
    parse(completion) reads a reply; failed(message) is the outcome of an engine error; ok(outcome)
    says whether a reply needs no retry. logprobs: return the top-k log probabilities too."""
    results = [Asked(failed("not asked")) for _ in conversations]
    todo = list(range(len(conversations)))
    for attempt in range(max_retries + 1):
        if not todo:
            break
        requests = [ChatRequest(conversations[i], Sampling(n=1, temperature=temperature(rule, attempt), top_p=1.0,
                                                           max_tokens=rule.sampling.max_tokens,
                                                           seed=rule.sampling.seed + attempt, logprobs=logprobs),
                                json_schema=schema, choice=choice)
                    for i in todo]
        retry = []
        for i, reply in zip(todo, send_warm(engine, requests) if attempt == 0 else engine.chat(requests)):
            r = results[i]
            r.attempts += 1
            if reply.error:
                r.outcome = failed(f"engine error: {reply.error}")
            else:
                c = reply.completions[0]
                r.raw.append(c.text)
                r.prompt_tokens += reply.prompt_tokens
                r.completion_tokens += c.completion_tokens
                r.outcome = parse(c)
            if ok(r.outcome) or attempt == max_retries:
                if on_progress:
                    on_progress(1)
            else:
                retry.append(i)
        todo = retry
    return results
