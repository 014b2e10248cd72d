"""Prompt perturbation: how a synthesis prompt is worded and laid out, chosen from one seed.

Every choice (system prompt, phrasing of the format instruction, question/instruction order,
markup) is drawn from `random.Random(seed)` over the configured lists, so the stored seed and
the config rebuild the exact prompt (pipeline/synthesis/prompts.py)."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Templates around the format instruction; {instruction} is the style's text.
PHRASINGS = [
    "{instruction}",
    "Format: {instruction}",
    "Please follow this answer format. {instruction}",
    "How to answer: {instruction}",
    "Requirements for your reply: {instruction}",
]
# Besides synthesis.system_prompt (first) and no system prompt at all (None).
SYSTEM_PROMPT_VARIANTS = [
    "You are a helpful assistant. Think the problem through before you answer.",
    "You are an expert tutor. Reason step by step, then give a clear answer.",
    "Solve the task. Show your reasoning first, then the answer.",
]
Order = Literal["question_first", "instruction_first"]
Markup = Literal["plain", "compact", "labeled", "markdown", "xml_tags"]


class PerturbationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True  # off: the first of every list (the unperturbed prompt)
    # None: [synthesis.system_prompt, no system prompt, *SYSTEM_PROMPT_VARIANTS]. An entry null
    # means no system message.
    system_prompts: list[str | None] | None = Field(default=None, min_length=1)
    phrasings: list[str] = Field(default_factory=lambda: list(PHRASINGS), min_length=1)
    orders: list[Order] = Field(default_factory=lambda: ["question_first", "instruction_first"], min_length=1)
    markups: list[Markup] = Field(default_factory=lambda: ["plain", "compact", "labeled", "markdown", "xml_tags"],
                                  min_length=1)

    def system_prompt_list(self, base: str | None) -> list[str | None]:
        return self.system_prompts if self.system_prompts is not None else [base, None, *SYSTEM_PROMPT_VARIANTS]


class Perturbation(BaseModel):
    """The choices one seed made; stored with the sample as JSON."""

    seed: int
    system: int  # index into the system prompt list
    phrasing: int
    order: Order
    markup: Markup

    @classmethod
    def draw(cls, seed: int, cfg: PerturbationConfig, n_system: int) -> "Perturbation":
        if not cfg.enabled:
            return cls(seed=seed, system=0, phrasing=0, order=cfg.orders[0], markup=cfg.markups[0])
        rng = random.Random(seed)
        return cls(seed=seed, system=rng.randrange(n_system), phrasing=rng.randrange(len(cfg.phrasings)),
                   order=rng.choice(cfg.orders), markup=rng.choice(cfg.markups))
