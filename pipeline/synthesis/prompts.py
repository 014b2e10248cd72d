"""Synthesis prompts: the question, the requested format's instruction and the perturbation,
assembled into chat messages. A pure function of (question, choice, config), so a stored
sample's prompt can be rebuilt exactly from its row (tests/stages/test_format_sampler.py)."""

from __future__ import annotations

from pipeline.synthesis.format_sampler import FormatChoice
from schemas.config import SynthesisConfig
from schemas.formats import format_instruction

# (question label, instruction label, separator) per markup; labels wrap their part.
_MARKUP = {
    "plain": (("", ""), ("", ""), "\n\n"),
    "compact": (("", ""), ("", ""), "\n"),
    "labeled": (("Question: ", ""), ("Instructions: ", ""), "\n\n"),
    "markdown": (("### Problem\n", ""), ("### Answer format\n", ""), "\n\n"),
    "xml_tags": (("<question>\n", "\n</question>"), ("<format>\n", "\n</format>"), "\n"),
}


def system_prompts(cfg: SynthesisConfig) -> list[str | None]:
    return cfg.perturbation.system_prompt_list(cfg.system_prompt)


def prompted_layout(cfg: SynthesisConfig, style_instruction: str) -> str:
    """The layout instruction of think_mode prompted, with the style's instruction for the answer
    part ("After the reasoning, present ..." -> "present ...")."""
    answer = style_instruction.removeprefix("After the reasoning, ")
    return cfg.prompted_layout.instruction.replace("{format}", answer[:1].lower() + answer[1:])


def build_messages(question: str, choice: FormatChoice, cfg: SynthesisConfig) -> list[dict]:
    p = choice.perturbation
    style = cfg.catalog()[choice.style]
    instruction = cfg.perturbation.phrasings[p.phrasing].format(
        instruction=format_instruction(style, choice.placement, choice.length_band))
    (q_open, q_close), (i_open, i_close), sep = _MARKUP[p.markup]
    parts = [f"{q_open}{question.strip()}{q_close}", f"{i_open}{instruction}{i_close}"]
    if p.order == "instruction_first":
        parts.reverse()
    if cfg.think_mode == "prompted":  # the reasoning / answer layout, after everything else
        parts.append(prompted_layout(cfg, format_instruction(style, choice.placement, choice.length_band)))
    system = system_prompts(cfg)[p.system]
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": sep.join(parts)})
    return messages
