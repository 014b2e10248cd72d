"""A trajectory as a training chat record in the OpenAI messages shape, and its check against a
target chat template.

    record = chat_record(trajectory)                       # interleaved thinking, both reasoning keys
    record = chat_record(trajectory, history="drop_before_last_user", reasoning_in="think_tags")
    problems = template_problems(record, tokenizer, max_tokens=4096)   # [] when it round-trips

Record: {"messages": [...], "tools": [OpenAI function specs]}. Assistant turns carry `tool_calls`
([{id, type: function, function: {name, arguments: JSON string}}]); tool turns carry
`tool_call_id`, `name` and the observation text. Reasoning goes in `reasoning_content` and
`reasoning` (servers renamed the field, so both), or inline as <think>...</think> before the
content, or both. History policy: `interleaved` (default) keeps every assistant turn's thinking
(the point of interleaved thinking: the model sees its earlier thoughts); `drop_before_last_user`
drops thinking from assistant turns before the last user turn, as some chat templates do.
With a RenderChoice the tools are renamed and reordered as it says.
"""

from __future__ import annotations

import json
from typing import Literal

from pipeline.agentic.perturb.call_syntax import parse_calls
from pipeline.agentic.perturb.render import RenderChoice, rename_and_order
from pipeline.agentic.perturb.tool_docs import openai_tools
from schemas.agentic import Message, Trajectory

History = Literal["interleaved", "drop_before_last_user"]
ReasoningIn = Literal["fields", "think_tags", "both"]
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def chat_record(trajectory: Trajectory, history: History = "interleaved", reasoning_in: ReasoningIn = "fields",
                render: RenderChoice | None = None) -> dict:
    specs, messages = trajectory.tools, trajectory.messages
    if render is not None:
        specs, messages = rename_and_order(render, specs, messages)
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    out = []
    for i, m in enumerate(messages):
        keep_thinking = history == "interleaved" or i > last_user
        out.append(_message(m, keep_thinking, reasoning_in))
    return {"messages": out, "tools": openai_tools(specs)}


def _message(m: Message, keep_thinking: bool, reasoning_in: str) -> dict:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "name": m.name, "content": m.content or ""}
    if m.role != "assistant":
        return {"role": m.role, "content": m.content or ""}
    reasoning = (m.reasoning or "").strip() if keep_thinking else ""
    content = m.content or ""
    out: dict = {"role": "assistant"}
    if reasoning and reasoning_in in ("think_tags", "both"):
        content = f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}" + (f"\n\n{content}" if content else "")
    out["content"] = content
    if reasoning and reasoning_in in ("fields", "both"):
        out["reasoning_content"] = out["reasoning"] = reasoning
    if m.tool_calls:
        bad = [c for c in m.tool_calls if c.arguments is None or not c.name]
        if bad:
            raise ValueError(f"call {bad[0].id} could not be parsed ({bad[0].parse_error}); "
                             "such trajectories fail unparsable_call and are not exported")
        out["tool_calls"] = [{"id": c.id, "type": "function",
                              "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
                             for c in m.tool_calls]
    return out


# --- the target chat template ------------------------------------------------------------------

def for_template(record: dict, knows_reasoning: bool) -> list[dict]:
    """The record's messages as HF chat templates take them: arguments as dicts, and the reasoning
    folded into <think> tags for a template that does not render reasoning_content."""
    out = []
    for m in record["messages"]:
        m = dict(m)
        reasoning = m.pop("reasoning_content", None)
        m.pop("reasoning", None)
        if reasoning and knows_reasoning:
            m["reasoning_content"] = reasoning
        elif reasoning:
            m["content"] = f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}" + (f"\n\n{m['content']}" if m["content"] else "")
        if "tool_calls" in m:
            m["tool_calls"] = [{"id": c["id"], "type": "function",
                                "function": {"name": c["function"]["name"],
                                             "arguments": json.loads(c["function"]["arguments"])}}
                               for c in m["tool_calls"]]
        out.append(m)
    return out


def template_problems(record: dict, tokenizer, max_tokens: int) -> list[str]:
    """Render the record with the tokenizer's chat template and check the round trip: every
    call comes back from the rendered text (Hermes <tool_call> blocks, as Qwen2.5 writes them),
    every kept thinking block is in the text, and the whole fits max_tokens."""
    knows_reasoning = "reasoning_content" in (tokenizer.chat_template or "")
    text = tokenizer.apply_chat_template(for_template(record, knows_reasoning), tools=record["tools"] or None,
                                         tokenize=False)
    problems = []
    expected = [(c["function"]["name"], json.loads(c["function"]["arguments"]))
                for m in record["messages"] for c in m.get("tool_calls", [])]
    # from the first user turn on: the template's own instructions show a <tool_call> example
    first_user = next((m["content"] for m in record["messages"] if m["role"] == "user"), "")
    _, parsed = parse_calls("hermes", text[max(text.find(first_user), 0):])
    got = [(c.name, c.arguments) for c in parsed]
    if got != expected:
        problems.append(f"tool calls do not round-trip: {len(expected)} written, {len(got)} read back as written")
    for i, m in enumerate(record["messages"]):
        reasoning = m.get("reasoning_content") or (m["content"].split(THINK_CLOSE)[0].removeprefix(THINK_OPEN)
                                                   if m["role"] == "assistant" and THINK_CLOSE in m["content"] else "")
        if reasoning.strip() and reasoning.strip() not in text:
            problems.append(f"message {i}: the chat template dropped its thinking")
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    if n > max_tokens:
        problems.append(f"too long: {n} tokens > {max_tokens}")
    return problems
