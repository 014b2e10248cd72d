"""The zero-shot domain rule: its prompt, schema, parse and confidence (no model: pure functions;
the real-model accuracy is bench/domains_unseen.py's)."""

from __future__ import annotations

import math

from pipeline.domain_classifier.zero_shot import (MAX_QUESTION_CHARS, calibrated, confidence, distribution, parse, request,
                                        system_prompt)
import pytest

from schemas.domains import DEFAULT_DESCRIPTIONS, DEFAULT_EXAMPLES, DomainConfig

DOMAINS = list(DEFAULT_DESCRIPTIONS)


def test_every_domain_is_described_to_the_model_and_other_is_a_choice():
    prompt = system_prompt(DEFAULT_DESCRIPTIONS)
    for domain, text in DEFAULT_DESCRIPTIONS.items():
        assert f"- {domain}: {text}" in prompt
    req = request("Which treaty ended the First World War?", DEFAULT_DESCRIPTIONS)
    assert list(req.choice) == DOMAINS == ["math", "code", "science", "logic", "other"]
    assert req.json_schema is None  # a bare choice: compact JSON pushed the 1.5B model to "math" (PROMPT_VERSION 1)
    assert req.sampling.temperature == 0.0 and req.sampling.logprobs
    assert req.messages[0]["content"] == prompt  # shared by every question: one prefix to cache


def test_worked_examples_follow_the_descriptions_in_the_shared_prompt():
    prompt = system_prompt(DEFAULT_DESCRIPTIONS, DEFAULT_EXAMPLES)
    assert prompt.index("- other:") < prompt.index("Examples:") < prompt.index("Reply with the domain's name only")
    assert "Question:\nWhich organelle produces most of a cell's ATP?\nDomain: science\n" in prompt
    assert {d for _, d in DEFAULT_EXAMPLES} == set(DOMAINS)  # every domain shown at least once
    req = request("Who wrote Hamlet?", DEFAULT_DESCRIPTIONS, DEFAULT_EXAMPLES)
    assert req.messages[0]["content"] == prompt and "Examples:" not in system_prompt(DEFAULT_DESCRIPTIONS)
    with pytest.raises(ValueError, match="examples: unknown domain"):
        DomainConfig(examples=[("Who wrote Hamlet?", "literature")])


def test_long_questions_are_cut_to_their_head():
    req = request("x" * (MAX_QUESTION_CHARS + 500), DEFAULT_DESCRIPTIONS)
    assert req.messages[1]["content"].endswith("x ...") and len(req.messages[1]["content"]) < MAX_QUESTION_CHARS + 20


def test_parse_accepts_only_a_listed_domain():
    assert parse("logic", DOMAINS) == "logic"
    assert parse(' "Science".', DOMAINS) == "science"  # an unconstrained server's decorations
    assert parse("history", DOMAINS) is None
    assert parse('{"domain": "logic"}', DOMAINS) is None and parse("", DOMAINS) is None


def test_confidence_is_the_answer_share_of_the_domain_tokens():
    steps = [{"math": math.log(0.6), "sci": math.log(0.3), "The": math.log(0.05), "code": math.log(0.05)},
             {"ence": -0.01}]
    assert confidence(steps, "math", DOMAINS) == 0.6 / 0.95
    assert confidence(steps, "science", DOMAINS) == 0.3 / 0.95
    assert confidence(None, "math", DOMAINS) is None
    assert confidence([{"{": -0.1}], "math", DOMAINS) is None  # no domain token seen


def test_distribution_and_calibration_by_the_prior():
    steps = [{"logic": math.log(0.5), "math": math.log(0.3), "other": math.log(0.2)}]
    dist = distribution(steps, DOMAINS)
    assert dist["logic"] == 0.5 and dist["code"] == 0.0 and abs(sum(dist.values()) - 1) < 1e-9
    # a model that says "logic" to a content-free input half the time: its logic is discounted
    prior = {"logic": 0.5, "math": 0.1, "other": 0.1, "code": 0.15, "science": 0.15}
    cal = calibrated(dist, prior)
    assert max(cal, key=cal.get) == "math" and abs(sum(cal.values()) - 1) < 1e-9
    flat = calibrated(dist, {d: 0.2 for d in DOMAINS})  # a flat prior changes nothing
    assert all(abs(flat[d] - dist[d]) < 1e-9 for d in DOMAINS)
