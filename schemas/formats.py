"""Answer formats a synthesized answer can be asked for (the seed of the format catalog)."""

from __future__ import annotations

from pydantic import BaseModel


class AnswerFormat(BaseModel):
    name: str
    instruction: str


FORMATS: dict[str, AnswerFormat] = {
    f.name: f
    for f in [
        AnswerFormat(
            name="numbered_steps",
            instruction="After the reasoning, present the solution as numbered steps, then the final answer.",
        ),
        AnswerFormat(
            name="prose",
            instruction="After the reasoning, explain the solution in one or two short paragraphs of prose.",
        ),
        AnswerFormat(
            name="boxed",
            instruction="After the reasoning, state the final answer inside \\boxed{}.",
        ),
        AnswerFormat(
            name="bullets",
            instruction="After the reasoning, summarize the solution as a short bullet list ending with the answer.",
        ),
    ]
}


def get_format(name: str) -> AnswerFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown answer format {name!r}; known: {sorted(FORMATS)}") from None
