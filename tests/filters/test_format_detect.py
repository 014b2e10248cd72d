"""Answer-style detectors (filters/text/format_detect.py) on hand-written positive and negative
examples of every style in the catalog (schemas/formats.py)."""

from __future__ import annotations

import pytest

from filters.text.format_detect import DETECTORS, matches, realized_style
from schemas.formats import FORMATS

EXAMPLES = {
    "numbered_steps": "1. Half of 48 is 24.\n2. Add April and May: 48 + 24 = 72.\nThe answer is 72.",
    "bullets": "- April: 48 clips\n- May: 24 clips\n- Total: 72 clips",
    "markdown_headings": "## Approach\nAdd both months.\n\n## Answer\n72 clips.",
    "table": "| month | clips |\n|---|---|\n| April | 48 |\n| May | 24 |\n\nTotal: 72.",
    "json_object": '{"explanation": "48 + 24", "answer": "72"}',
    "code_first": "```python\ndef add(a, b):\n    return a + b\n```\nThe function returns the sum of its arguments.",
    "boxed": "She sold 48 + 24 = 72 clips, so the answer is \\boxed{72}.\nThat covers April and May together.",
    "terse_final": "72",
    "prose": "In May she sold half of April's 48 clips, which is 24. Together that makes 72 clips.",
}

NEGATIVES = {
    "numbered_steps": ["1. Only one numbered line here.", "In 1990 there were 3 cats.",
                       "```text\n1. a listing\n2. inside code\n```\nThat is the listing."],
    "bullets": ["- just one bullet", "5 - 3 = 2 and 7 - 1 = 6",
                "```diff\n- old line\n- another old line\n```\nThe diff removes two lines."],
    "markdown_headings": ["The #1 answer is 72.", "#hashtag not a heading",
                          # code comments are not headings (a code answer passed this style on them)
                          "```python\nimport re\n\n# Define the pattern\ndef f(s):\n    return s\n```"],
    "table": ["| a lone row |", "x | y and z | w"],
    "json_object": ['{"answer": 72', "[1, 2, 3]", "The answer is {72}."],
    "code_first": ["Here is code:\n```python\nprint(1)\n```", "```python\nprint(1)\n```",
                   # explanation first: more than one lead-in line before the code
                   "We loop over the list.\nThen we sum it:\n```python\nprint(1)\n```\nDone.",
                   "The idea is a loop.\n```python\nprint(1)\n```\nDone."],
    "boxed": ["The answer is 72.", "boxed answers are nice"],
    "terse_final": ["", "The answer is 72.\nBecause 48 + 24 = 72.", "x" * 121],
    "prose": ["72", "1. First.\n2. Second. Done.", "## Answer\nIt is 72. Really."],
}


def test_every_catalog_style_has_a_detector_and_examples():
    assert set(FORMATS) == set(DETECTORS) == set(EXAMPLES) == set(NEGATIVES)
    assert len(FORMATS) >= 8


@pytest.mark.parametrize("style", sorted(EXAMPLES))
def test_positive_example_matches_and_is_realized_as_its_style(style):
    assert matches(style, EXAMPLES[style])
    assert realized_style(EXAMPLES[style]) == style


@pytest.mark.parametrize(("style", "text"), [(s, t) for s, texts in sorted(NEGATIVES.items()) for t in texts])
def test_negative_example_does_not_match(style, text):
    assert not matches(style, text)


def test_code_first_allows_one_short_lead_in_line():
    # as the 1.5B default model writes it (MBPP, asked for code_first)
    text = ("Here's the code to find the closest smaller number than n:\n```python\ndef closest_num(n):\n"
            "    return n - 1\n```\nExplanation:\nThe function returns n - 1.")
    assert matches("code_first", text) and realized_style(text) == "code_first"


def test_styles_combine_and_the_most_specific_one_is_realized():
    text = "1. 48 / 2 = 24\n2. 48 + 24 = 72\n\nFinal answer: \\boxed{72}"
    assert matches("numbered_steps", text) and matches("boxed", text)
    assert realized_style(text) == "numbered_steps"
    fenced_json = '```json\n{"explanation": "sum", "answer": 72}\n```'
    assert realized_style(fenced_json) == "json_object"


def test_markdown_around_code_still_counts_and_an_unclosed_fence_hides_only_what_follows_it():
    answer = "## Approach\nUse a regex.\n\n```python\n# compile once\nPAT = 1\n```\n\n## Answer\nDone."
    assert matches("markdown_headings", answer)
    assert realized_style("```python\n# a comment\nx = 1\n```\nIt sets x.") == "code_first"
    assert matches("numbered_steps", "1. First step.\n2. Second step.\n```python\n# cut off")


def test_empty_and_unknown():
    assert realized_style(None) == realized_style("   ") == "unknown"
    with pytest.raises(ValueError, match="no detector for answer style 'haiku'"):
        matches("haiku", "text")
