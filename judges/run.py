"""Judge samples with one rule: render, call the engine with the output schema, parse, retry."""

from __future__ import annotations

import json
from collections.abc import Callable

from judges.parse import JudgeOutcome, parse_output
from judges.render import render_messages
from schemas.chat import ChatBackend, ChatRequest, Sampling
from schemas.judge_rule import JudgeRule


RETRY_TEMPERATURE = 0.7


def applies(rule: JudgeRule, sample: dict) -> bool:
    """Does the rule apply to this sample by its own fields (domain, format, reference)?

    For samples held in memory (tests, benches, `curate judges test`); the judge stage selects
    from the store with pipeline.stages.judge.eligible, which adds the stage conditions."""
    a = rule.applies_to
    return ((a.domains is None or sample.get("domain") in a.domains)
            and (a.formats is None or sample.get("requested_format") in a.formats)
            and (not a.requires_reference or sample.get("reference_answer") is not None))


def judge_samples(rule: JudgeRule, samples: list[dict], engine: ChatBackend, max_retries: int = 2,
                  on_progress: Callable[[int], None] | None = None) -> list[dict]:
    """One result per sample: passed, score, reason, details (raw output, tokens, attempts).

    Output that does not parse is retried (sampled, with another seed) up to `max_retries`
    times, then recorded as a judge error that fails the sample.
    """
    messages = [render_messages(rule, s) for s in samples]
    results: list[dict | None] = [None] * len(samples)
    attempts = [0] * len(samples)
    raw: list[list[str]] = [[] for _ in samples]
    tokens = [[0, 0] for _ in samples]
    todo = list(range(len(samples)))
    for attempt in range(max_retries + 1):
        if not todo:
            break
        requests = [
            ChatRequest(messages[i], Sampling(n=1, temperature=_temperature(rule, attempt), top_p=1.0,
                                              max_tokens=rule.sampling.max_tokens,
                                              seed=rule.sampling.seed + attempt),
                        json_schema=rule.output_schema())
            for i in todo
        ]
        replies = engine.chat(requests)
        retry = []
        for i, reply in zip(todo, replies):
            attempts[i] += 1
            if reply.error:
                outcome = JudgeOutcome(None, None, f"engine error: {reply.error}")
            else:
                c = reply.completions[0]
                raw[i].append(c.text)
                tokens[i][0] += reply.prompt_tokens
                tokens[i][1] += c.completion_tokens
                outcome = parse_output(rule, c.text, c.finish_reason)
            if outcome.ok:
                results[i] = _verdict(rule, outcome, raw[i], tokens[i], attempts[i])
                if on_progress:
                    on_progress(1)
            elif attempt == max_retries:
                results[i] = _verdict(rule, outcome, raw[i], tokens[i], attempts[i])
                if on_progress:
                    on_progress(1)
            else:
                retry.append(i)
        todo = retry
    return results  # type: ignore[return-value]


def _temperature(rule: JudgeRule, attempt: int) -> float:
    """A retry at temperature 0 would repeat the failed output whatever the seed: retries sample."""
    return rule.sampling.temperature if attempt == 0 else max(rule.sampling.temperature, RETRY_TEMPERATURE)


def _verdict(rule: JudgeRule, o: JudgeOutcome, raw: list[str], tokens: list[int], attempts: int) -> dict:
    details = json.dumps({"raw": raw, "prompt_tokens": tokens[0], "completion_tokens": tokens[1],
                          "attempts": attempts, "error": o.error, "flags": o.flags})
    if not o.ok:
        return {"passed": False, "score": None, "reason": f"judge error: {o.error}", "details": details}
    passed = o.score >= rule.threshold
    return {"passed": passed, "score": float(o.score), "reason": o.rationale, "details": details}
