"""An agentic trajectory as a judge reads it: the task, then each step's reasoning, tool calls and
observations, then the final turn, each part cut to a bounded length so a long trace still fits
the judge model's context (4096 tokens for the default model).

    text = render_steps(messages)   # messages: the stored turns (JSON text or dicts or Messages)

A step is one assistant turn with what it called and what came back. Text is cut in the middle
(the start says what the model set out to do, the end what it concluded); a trace with more than
MAX_STEPS steps shows the first and the last ones and says how many were left out. Pure: no I/O.
"""

from __future__ import annotations

import json

from schemas.agentic import Message

REASONING_CHARS = 600    # per step
CALL_CHARS = 240         # per call: name(arguments)
OBSERVATION_CHARS = 360  # per observation
ANSWER_CHARS = 300       # the final turn's content
MAX_STEPS = 8            # steps shown; beyond, the first MAX_STEPS - 2 and the last 2
# Bump when the text a judge sees for the same trajectory changes (part of the verdicts' config hash).
RENDER_VERSION = 1


def clip(text: str | None, limit: int) -> str:
    """At most about `limit` characters: the start and the end, the cut said in the middle."""
    text = (text or "").strip()
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    return f"{text[:head].rstrip()} [... {len(text) - head - tail} characters cut ...] {text[-tail:].lstrip()}"


def parse_messages(messages) -> list[Message]:
    """The turns as the store returns them (a JSON text of a list), or already parsed."""
    if isinstance(messages, str):
        messages = json.loads(messages)
    return [m if isinstance(m, Message) else Message.model_validate(m) for m in messages or []]


def _call_text(call) -> str:
    if call.arguments is None or call.name is None:  # could not be parsed: what the model wrote
        return clip(f"(unparsable call: {call.parse_error}) {call.raw or ''}", CALL_CHARS)
    return clip(f"{call.name}({json.dumps(call.arguments, ensure_ascii=False, sort_keys=True)})", CALL_CHARS)


def steps(messages) -> list[str]:
    """One text per assistant turn: its reasoning, its calls each with its observation, or its answer."""
    turns = parse_messages(messages)
    results = {m.tool_call_id: m for m in turns if m.role == "tool"}
    out = []
    for m in turns:
        if m.role != "assistant":
            continue
        lines = [f"reasoning: {clip(m.reasoning, REASONING_CHARS) or '(none)'}"]
        for call in m.tool_calls or []:
            lines.append(f"call: {_call_text(call)}")
            obs = results.get(call.id)
            lines.append(f"observation ({obs.tool_status or 'ok'}): {clip(obs.content, OBSERVATION_CHARS)}"
                         if obs is not None else "observation: (none)")
        if not m.tool_calls:
            lines.append(f"answer: {clip(m.content, ANSWER_CHARS) or '(none)'}")
        elif m.content and m.content.strip():
            lines.append(f"text: {clip(m.content, ANSWER_CHARS)}")
        out.append("\n".join(lines))
    return out


def render_steps(messages, open_: str, close: str, neutralize) -> str:
    """Every step between its own delimiters (step 1, step 2, ...), text neutralized by the caller's
    function (judges.render.neutralize); at most MAX_STEPS, the cut said between them."""
    texts = steps(messages)
    numbered = list(enumerate(texts, start=1))
    if len(numbered) > MAX_STEPS:
        left_out = len(numbered) - MAX_STEPS
        numbered = numbered[:MAX_STEPS - 2] + [(None, f"({left_out} steps left out)")] + numbered[-2:]
    if not numbered:
        return "(the trajectory has no model turn)"
    blocks = []
    for i, text in numbered:
        if i is None:
            blocks.append(text)
        else:
            blocks.append(f"{open_}step {i}\n{neutralize(text)}\n{close}step {i}")
    return "\n".join(blocks)
