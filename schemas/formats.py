"""Answer formats a synthesized answer can be asked for: the catalog (detectors: filters/format_detect.py)."""

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
        # The rest of the catalog: available to configs (synthesis.formats), not in the default mix yet.
        AnswerFormat(
            name="markdown_headings",
            instruction="After the reasoning, write the answer in markdown with a heading for each part "
                        "(for example '## Approach' and '## Answer').",
        ),
        AnswerFormat(
            name="table",
            instruction="After the reasoning, present the key quantities or steps in a markdown table, "
                        "then state the final answer.",
        ),
        AnswerFormat(
            name="json_object",
            instruction='After the reasoning, reply with only a JSON object with the fields "explanation" '
                        'and "answer".',
        ),
        AnswerFormat(
            name="code_first",
            instruction="After the reasoning, give the code first in a fenced code block, then a short explanation.",
        ),
        AnswerFormat(
            name="terse_final",
            instruction="After the reasoning, give only the final answer in one short line.",
        ),
    ]
}


def get_format(name: str) -> AnswerFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown answer format {name!r}; known: {sorted(FORMATS)}") from None
