"""The render-time choices for one trajectory, drawn from one seed and stored with it, and the
rendering of a trajectory's text turns under them (calls written in the chosen syntax, tools
renamed and reordered, tool docs in the chosen style inside the chosen system prompt)."""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict

from pipeline.agentic.perturb.call_syntax import CALL_SYNTAXES, CallSyntax, render_calls
from pipeline.agentic.perturb.rename import Rename
from pipeline.agentic.perturb.system_prompt import SYSTEM_PROMPTS, system_prompt
from pipeline.agentic.perturb.tool_docs import TOOL_DOCS, ToolDocs, render_tool_docs
from schemas.agentic import Message, ToolSpec


class RenderChoice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int
    rename: Rename | None
    tool_order: list[str]          # canonical names, in the order shown
    tool_docs: ToolDocs
    call_syntax: CallSyntax
    system_prompt: int

    @classmethod
    def draw(cls, seed: int, specs: list[ToolSpec], rename_rate: float = 0.5) -> "RenderChoice":
        rng = random.Random(seed)
        order = [s.name for s in specs]
        rng.shuffle(order)
        rename = Rename.draw(rng.randrange(2 ** 31), specs) if rng.random() < rename_rate else None
        return cls(seed=seed, rename=rename, tool_order=order, tool_docs=rng.choice(TOOL_DOCS),
                   call_syntax=rng.choice(CALL_SYNTAXES), system_prompt=rng.randrange(len(SYSTEM_PROMPTS)))

    def record(self) -> dict:
        return {"render_seed": self.seed, "renamed": self.rename is not None, "tool_order": self.tool_order,
                "tool_docs": self.tool_docs, "call_syntax": self.call_syntax, "system_prompt": self.system_prompt}


def rename_and_order(choice: RenderChoice, specs: list[ToolSpec],
                     messages: list[Message]) -> tuple[list[ToolSpec], list[Message]]:
    by_name = {s.name: s for s in specs}
    specs = [by_name[n] for n in choice.tool_order if n in by_name]
    return choice.rename.apply(specs, messages) if choice.rename else (specs, messages)


def render_text(choice: RenderChoice, specs: list[ToolSpec], messages: list[Message]) -> list[dict]:
    """Plain-text chat messages (no tools field): the system prompt carries the tool docs, the
    assistant turns carry their calls in the chosen syntax, tool turns become user-visible text."""
    specs, messages = rename_and_order(choice, specs, messages)
    system = system_prompt(choice.system_prompt, render_tool_docs(specs, choice.tool_docs), choice.call_syntax)
    out = [{"role": "system", "content": system}]
    for m in messages:
        if m.role == "system":
            out[0]["content"] = f"{m.content}\n\n{system}"
        elif m.role == "assistant":
            valid = [c for c in m.tool_calls or [] if c.arguments is not None and c.name]
            text = render_calls(choice.call_syntax, valid, m.content)
            out.append({"role": "assistant", "content": text} | ({"reasoning": m.reasoning} if m.reasoning else {}))
        elif m.role == "tool":
            out.append({"role": "tool", "content": m.content or "", "name": m.name, "tool_call_id": m.tool_call_id})
        else:
            out.append({"role": m.role, "content": m.content or ""})
    return out
