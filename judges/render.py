"""Build a judge's chat messages from a rule and a sample.

The rubric (description, scale, output format) is the system message and identical for every
sample of a rule, so vLLM's prefix cache reuses it; the sample goes in the user message
between delimiters, and delimiter look-alikes and chat-template role markers inside sample
text are neutralized.
"""

from __future__ import annotations

import json
import re

import jinja2

from schemas.judge_rule import JudgeRule

OPEN, CLOSE = "<<<BEGIN ", "<<<END "
_env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


# Chat-template markers a tokenizer turns into special tokens even inside message text: with
# them, sample text could end the user turn and open a system or assistant turn of its own.
# A space splits each one (still readable for the judge, no longer a token). Role markers go
# first, then runs of 3+ angle brackets (our delimiters), so no step can rebuild an earlier one.
_ROLE_MARKERS = (
    ("<|", "< |"), ("|>", "| >"),          # ChatML and most others: <|im_start|>, <|eot_id|>, ...
    ("<\uff5c", "< \uff5c"), ("\uff5c>", "\uff5c >"),  # full-width bars: <｜begin▁of▁sentence｜>
    ("[INST]", "[ INST]"), ("[/INST]", "[ /INST]"),  # Mistral / Llama 2
    ("</s>", "< /s>"), ("<s>", "< s>"),    # SentencePiece BOS / EOS
)
_BRACKET_RUN = re.compile(r"<{3,}|>{3,}")  # our OPEN / CLOSE start with "<<<"; ">>>" mirrors them


def neutralize(text: str | None) -> str:
    """Sample text must not be able to close a delimiter block, open a new one, or open a chat turn."""
    text = text or ""
    for marker, defused in _ROLE_MARKERS:
        text = text.replace(marker, defused)
    return _BRACKET_RUN.sub(lambda m: " ".join(m.group()), text)


def _format_instruction(name: str | None) -> str:
    """The instruction the sample's prompt gave for its answer format ("" when unknown)."""
    from schemas.formats import FORMATS

    return FORMATS[name].instruction if name in FORMATS else ""


def _examples(rule: JudgeRule) -> str:
    """Graded examples, delimited like samples (their text is neutralized the same way)."""
    if not rule.examples:
        return ""
    blocks = []
    for i, ex in enumerate(rule.examples, start=1):
        parts = [("question", ex.question), ("reasoning", ex.reasoning), ("answer", ex.answer)]
        if ex.reference is not None:
            parts.insert(1, ("reference", ex.reference))
        body = "\n".join(f"{OPEN}{name}\n{neutralize(text)}\n{CLOSE}{name}" for name, text in parts)
        verdict = json.dumps({"rationale": ex.rationale, "score": ex.score}, ensure_ascii=False)
        blocks.append(f"Example {i}:\n{body}\nVerdict: {verdict}")
    return "Graded examples:\n\n" + "\n\n".join(blocks) + "\n\n"


def rubric(rule: JudgeRule) -> str:
    levels = "\n".join(f"{k}: {v}" for k, v in sorted(rule.scale.anchors.items()))
    return (
        f"You are a strict grader of training data. Rule: {rule.name}.\n"
        f"{rule.description.strip()}\n\n"
        f"Score on a scale from {rule.scale.min} to {rule.scale.max}:\n{levels}\n\n"
        + _examples(rule) +
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
