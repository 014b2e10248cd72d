"""Build a judge's chat messages from a rule and a sample.

The rubric (description, scale, output format) is the system message and identical for every
sample of a rule, so vLLM's prefix cache reuses it; the sample goes in the user message
between delimiters, and delimiter look-alikes inside sample text are neutralized.
"""

from __future__ import annotations

import jinja2

from schemas.judge_rule import JudgeRule

OPEN, CLOSE = "<<<BEGIN ", "<<<END "
_env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


def neutralize(text: str | None) -> str:
    """Sample text must not be able to close a delimiter block or open a new one."""
    return (text or "").replace("<<<", "< < <").replace(">>>", "> > >")


def _format_instruction(name: str | None) -> str:
    """The instruction the sample's prompt gave for its answer format ("" when unknown)."""
    from schemas.formats import FORMATS

    return FORMATS[name].instruction if name in FORMATS else ""


def rubric(rule: JudgeRule) -> str:
    levels = "\n".join(f"{k}: {v}" for k, v in sorted(rule.scale.anchors.items()))
    return (
        f"You are a strict grader of training data. Rule: {rule.name}.\n"
        f"{rule.description.strip()}\n\n"
        f"Score on a scale from {rule.scale.min} to {rule.scale.max}:\n{levels}\n\n"
        f'Reply only with JSON: {{"rationale": "<at most {rule.rationale_max_chars} characters>", '
        f'"score": <integer {rule.scale.min}-{rule.scale.max}>'
        + (f', "flags": <a list drawn from {rule.flags}>' if rule.flags else "") + "}."
    )


def render_messages(rule: JudgeRule, sample: dict) -> list[dict]:
    user = _env.from_string(rule.prompt).render(
        question=neutralize(sample.get("question_text")),
        reasoning=neutralize(sample.get("reasoning")),
        answer=neutralize(sample.get("answer")),
        reference=neutralize(sample.get("reference_answer")),
        requested_format=sample.get("requested_format"),
        format_instruction=_format_instruction(sample.get("requested_format")),
        domain=sample.get("domain"),
        open=OPEN, close=CLOSE,
    )
    return [{"role": "system", "content": rubric(rule)}, {"role": "user", "content": user}]
