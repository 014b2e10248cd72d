"""Answer formats a synthesized answer can be asked for: the catalog (detectors: filters/text/format_detect.py)."""

from __future__ import annotations

from pydantic import BaseModel


class AnswerFormat(BaseModel):
    name: str
    instruction: str
    # The style decides where the answer goes and how long it is (a JSON object, one terse line):
    # placement and length band are not asked for.
    fixed_layout: bool = False
    pattern: str | None = None  # config-defined styles: the regex (multiline) that detects them


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
            fixed_layout=True,
        ),
        AnswerFormat(
            name="code_first",
            instruction="After the reasoning, give the code first in a fenced code block, then a short explanation.",
        ),
        AnswerFormat(
            name="terse_final",
            instruction="After the reasoning, give only the final answer in one short line.",
            fixed_layout=True,
        ),
    ]
}


# Where the final answer sits in the answer, and how long the answer is asked to be.
PLACEMENTS = {
    "last": "End with the final answer.",
    "first": "State the final answer first, then the explanation.",
}
LENGTH_BANDS = {
    "any": "",
    "short": "Keep the answer short: at most about 60 words.",
    "long": "Make the answer thorough: at least about 150 words.",
}
# Realized length band of an answer, by words: (lowest, highest) inclusive.
BAND_WORDS = {"short": (0, 80), "medium": (81, 149), "long": (150, 10**9)}


def realized_band(text: str | None) -> str:
    words = len((text or "").split())
    return next(band for band, (lo, hi) in BAND_WORDS.items() if lo <= words <= hi)


def get_format(name: str, custom: dict[str, AnswerFormat] | None = None) -> AnswerFormat:
    catalog = FORMATS | (custom or {})
    try:
        return catalog[name]
    except KeyError:
        raise ValueError(f"unknown answer format {name!r}; known: {sorted(catalog)}") from None


def format_instruction(style: AnswerFormat, placement: str | None, band: str | None) -> str:
    """The style's instruction plus placement and length, for styles whose layout is free."""
    parts = [style.instruction]
    if not style.fixed_layout:
        parts += [PLACEMENTS[placement] if placement else "", LENGTH_BANDS[band] if band else ""]
    return " ".join(p for p in parts if p)
