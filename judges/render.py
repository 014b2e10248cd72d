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
import jinja2.meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from schemas.judge_rule import JudgeRule

OPEN, CLOSE = "<<<BEGIN ", "<<<END "
# Sandboxed: a rule file can reach no Python object (no `cycler.__init__.__globals__`); sample
# text only ever arrives as a variable's value, which Jinja never evaluates.
_env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
VARIABLES = ("question", "reasoning", "answer", "reference", "requested_format", "format_instruction", "domain",
             "open", "close")  # what a rule's prompt may use
# What a trajectory rule's prompt may use: the task, its steps (judges/trajectory.py, already
# delimited per step), the final answer, the reference, the task's domain and the environment.
TRAJECTORY_VARIABLES = ("question", "steps", "answer", "reference", "domain", "environment", "open", "close")


def variables(target: str = "sample") -> tuple[str, ...]:
    return TRAJECTORY_VARIABLES if target == "trajectory" else VARIABLES


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
# Look-alikes a model reads as our delimiters: invisible characters between the brackets, and
# brackets from other blocks (full-width, small, CJK, math). Folded to "<" / ">" (and removed)
# before the runs are split.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_LOOK_ALIKES = str.maketrans({c: "<" for c in "\uff1c\ufe64\u3008\u2039\u27e8\u2329\u276e"} |
                             {c: ">" for c in "\uff1e\ufe65\u3009\u203a\u27e9\u232a\u276f"})


def neutralize(text: str | None) -> str:
    """Sample text must not be able to close a delimiter block, open a new one, or open a chat turn."""
    text = (text or "").translate(_INVISIBLE).translate(_LOOK_ALIKES)
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


def template_errors(prompt: str, target: str = "sample") -> list[str]:
    """Why a rule's prompt cannot render (empty: it can): Jinja syntax, a variable it does not
    get (those of its target), or anything the sandbox refuses; found when the rule is loaded,
    not when judging."""
    names = variables(target)
    try:
        used = jinja2.meta.find_undeclared_variables(_env.parse(prompt))  # compiles: unknown filters too
    except jinja2.TemplateSyntaxError as exc:
        return [f"Jinja syntax error on line {exc.lineno} of the prompt: {exc.message}"]
    unknown = used - set(names) - set(_env.globals)
    if unknown:
        return [f"the prompt uses {sorted(unknown)}, which {target} rules do not get; they get {list(names)}"]
    try:
        _env.from_string(prompt).render({name: "x" for name in names})
    except jinja2.TemplateError as exc:  # SecurityError, UndefinedError, TypeError inside filters ...
        return [f"the prompt does not render: {type(exc).__name__}: {exc}"]
    except Exception as exc:  # noqa: BLE001 - a filter raising on a string: still the rule file's fault
        return [f"the prompt does not render: {type(exc).__name__}: {exc}"]
    return []


def render_messages(rule: JudgeRule, sample: dict) -> list[dict]:
    """The judge's system (rubric) and user messages for a sample, or for a trajectory row
    (pipeline/agentic/judge.py JUDGE_INPUT) when the rule's target is trajectory."""
    if rule.target == "trajectory":
        return [{"role": "system", "content": rubric(rule)},
                {"role": "user", "content": _trajectory_user(rule, sample)}]
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


def _trajectory_user(rule: JudgeRule, row: dict) -> str:
    from judges.trajectory import ANSWER_CHARS, clip, render_steps

    return _env.from_string(rule.prompt).render(
        question=neutralize(row.get("question_text")),
        steps=render_steps(row.get("messages"), OPEN, CLOSE, neutralize),
        answer=neutralize(clip(row.get("final_answer"), ANSWER_CHARS)),
        reference=neutralize(row.get("reference_answer")),
        domain=row.get("domain"), environment=row.get("environment"),
        open=OPEN, close=CLOSE,
    )
