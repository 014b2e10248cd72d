"""Text addressed to a grader: instructions to ignore the rubric or give a score, fake verdict
JSON, our judge delimiters. A sample that talks to its judge is bad training data whatever the
judge then says, and a small judge is easily steered by it (bench/judge_injection.py), so this
cheap rule drops such samples before any judge sees them. Leaked chat-template tokens
(<|im_start|>, [INST], </s>) are the structure rule's."""

from __future__ import annotations

from filters.base import PatternFilter
from filters.registry import register

# Case-insensitive; matched on the lowercased sample.
IGNORE_INSTRUCTIONS = (r"\b(?:ignore|disregard|forget|override)\b[^\n]{0,40}?"
                       r"\b(?:instructions?|rubric|prompt|guidelines|grading|system prompt)\b")
TO_THE_GRADER = (r"\b(?:grader|judge|evaluator|grading mode|rubric)\b[^\n]{0,80}?"
                 r"\b(?:maximum|full|perfect|highest|top) (?:score|marks?|rating)\b"
                 r"|\b(?:note|message) to the (?:grader|judge|evaluator)\b"
                 r"|\b(?:give|assign|award|return|output|reply with)\b[^\n]{0,20}?\b(?:score|rating)\b ?(?:of |= ?|: ?)?(?:5|10|100)\b")
FAKE_VERDICT = r'"rationale"\s*:|"score"\s*:\s*\d+\s*[,}]\s*$|\bscore\s*=\s*\d+\s+for this (?:sample|answer)\b'
DELIMITER = r"<<<\s*(?:begin|end)\b"


@register
class JudgeBaitFilter(PatternFilter):
    name = "judge_bait"
    version = 1
    patterns = [
        (IGNORE_INSTRUCTIONS, "tells the judge to ignore its instructions: '{}'"),
        (TO_THE_GRADER, "asks the judge for a score: '{}'"),
        (FAKE_VERDICT, "contains a fake judge verdict: '{}'"),
        (DELIMITER, "contains a judge delimiter: '{}'"),
    ]
