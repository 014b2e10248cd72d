"""How a rollout's next turn is shown to a model: with the chat template's own tool support, or
with the tools documented in the system prompt when the template has none.

    mode = "chat_template" if template_renders_tools(tokenizer) else "system_prompt"
    plan = PromptPlan.draw(seed, specs, mode)            # recorded with the trajectory
    messages, tools = turn_messages(rollout, plan)       # tools None: documented in the system prompt

chat_template (Qwen2.5 and other templates that render `tools`): the OpenAI-shape conversation
and `tools`; the template writes the tool list and its Hermes <tool_call> instructions; the
call syntax is hermes. system_prompt (SmolLM2's template ignores `tools`): the render-time
perturbations of pipeline/agentic/perturb/ choose the tool docs (JSON schema, Python, XML), the
call syntax and the system prompt variant, drawn from the seed; earlier calls are written back in
that syntax and earlier thinking in <think> tags. Tools are never renamed here: the trajectory
is stored canonical and renaming is an export-time perturbation.

Either way the rollout's own system message asks for thinking before every call (THINK_FIRST;
system_prompt(mode) adds how to write a Hermes call in chat_template mode).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from pipeline.agentic.export import THINK_CLOSE, THINK_OPEN
from pipeline.agentic.perturb.call_syntax import CALL_SYNTAXES
from pipeline.agentic.perturb.render import RenderChoice, render_text
from pipeline.agentic.perturb.tool_docs import TOOL_DOCS
from pipeline.agentic.rollout import Rollout, showable
from schemas.agentic import ToolSpec

PromptMode = Literal["chat_template", "system_prompt"]
THINK_FIRST = ("Before every tool call, and before your final answer, think inside <think>...</think>: what you "
               "know, what you need, what the last result means. End with 'Final answer: ...' on the last line.")
# chat_template mode: how to write a call, said once more after the thinking instruction (Qwen2.5's
# template shows it with doubled braces and small models copy that, untagged: call_syntax reads it).
# On 6 shop_db + 6 GSM8K tasks with Qwen2.5-Coder-1.5B, with and without it: 16 vs 19 calls, 4 vs 3
# correct; kept for models that follow it. No sentence the model could copy as its answer.
HERMES_CALL = ("To use a tool, close your thinking with </think>, then write the call as <tool_call>\n"
               "{\"name\": \"...\", \"arguments\": {...}}\n</tool_call> and stop.")
_PROBE = "zz_probe_tool_7f3a"


def system_prompt(mode: "PromptMode") -> str:
    """The rollout's own system message: think before every call (and, with the template's tools,
    how to write the call)."""
    return THINK_FIRST + (" " + HERMES_CALL if mode == "chat_template" else "")


def template_renders_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template writes a `tools` list into the prompt."""
    tools = [{"type": "function", "function": {"name": _PROBE, "description": "probe",
                                               "parameters": {"type": "object", "properties": {}}}}]
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tools=tools, tokenize=False,
                                             add_generation_prompt=True)
    except Exception:  # noqa: BLE001 - a template that refuses tools has no tool support
        return False
    return _PROBE in text


@dataclass(frozen=True)
class PromptPlan:
    mode: PromptMode
    render: RenderChoice | None = None  # system_prompt mode: docs, syntax, prompt variant

    @classmethod
    def draw(cls, seed: int, specs: list[ToolSpec], mode: PromptMode, call_syntaxes=CALL_SYNTAXES,
             tool_docs=TOOL_DOCS) -> "PromptPlan":
        if mode == "chat_template":
            return cls(mode)
        choice = RenderChoice.draw(seed, specs, rename_rate=0.0)
        rng = random.Random(f"{seed}:prompt")
        choice = choice.model_copy(update={"call_syntax": rng.choice(list(call_syntaxes)),
                                           "tool_docs": rng.choice(list(tool_docs))})
        return cls(mode, choice)

    @property
    def call_syntax(self) -> str:
        return self.render.call_syntax if self.render else "hermes"

    def record(self) -> dict:
        """What trajectory.perturbations stores (call_syntax the rollout records itself)."""
        if self.render is None:
            return {"prompt_mode": self.mode}
        r = self.render.record()
        return {"prompt_mode": self.mode, "render_seed": r["render_seed"], "tool_order": r["tool_order"],
                "tool_docs": r["tool_docs"], "system_prompt": r["system_prompt"]}


def turn_messages(rollout: Rollout, plan: PromptPlan, knows_reasoning: bool = False) -> tuple[list[dict], list | None]:
    """The chat messages for the rollout's next turn and the `tools` field (None: in the prompt)."""
    if plan.mode == "chat_template":
        request = rollout.request(knows_reasoning)
        return request["messages"], request["tools"]
    out = []
    for m in render_text(plan.render, rollout.specs, showable(rollout.messages)):
        reasoning = m.pop("reasoning", None)
        if reasoning:
            m["content"] = f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}" + (f"\n\n{m['content']}" if m["content"] else "")
        out.append({"role": m["role"], "content": m["content"]})
    return out, None
