"""The format sampler (pipeline/synthesis/format_sampler.py) and prompt building (pipeline/synthesis/prompts.py):
coverage balance, weights, exclusions, determinism, and prompts rebuilt exactly from stored choices."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from pipeline.synthesis.format_sampler import FormatChoice, allowed_styles, plan_formats
from pipeline.hashing import seed_from
from pipeline.synthesis.prompts import build_messages, system_prompts
from schemas.config import SynthesisConfig
from schemas.formats import FORMATS, LENGTH_BANDS, PLACEMENTS
from schemas.perturbation import Perturbation


def questions(domain: str, answer_type: str | None, count: int, prefix: str = "q") -> list[tuple]:
    return [(f"{prefix}{domain}{i:04d}", domain, answer_type) for i in range(count)]


def plan(qs, **cfg) -> dict[tuple[str, int], FormatChoice]:
    config = SynthesisConfig(**cfg)
    return plan_formats(qs, config, len(system_prompts(config)))


def style_counts(p: dict, domain_prefix: str | None = None) -> Counter:
    return Counter(c.style for (qid, _), c in p.items() if domain_prefix is None or qid.startswith(domain_prefix))


def test_styles_are_balanced_within_a_domain_to_one_sample():
    p = plan(questions("math", "math", 90), n=2)
    counts = style_counts(p)
    allowed = allowed_styles(SynthesisConfig(), "math", "math")
    assert set(counts) == set(allowed) and "code_first" not in counts  # excluded for math answers
    assert max(counts.values()) - min(counts.values()) <= 1
    assert sum(counts.values()) == 180


def test_every_prefix_of_a_domain_stays_balanced():
    # Questions are dealt in a seeded order; a run cut short still has an even mix.
    config = SynthesisConfig(n=1)
    p = plan_formats(questions("logic", "text", 200), config, 1)
    ordered = sorted(p.items(), key=lambda kv: seed_from("order", config.seed, kv[0][0]))
    for cut in (17, 50, 123):
        counts = Counter(c.style for _, c in ordered[:cut])
        assert max(counts.values()) - min(counts.values()) <= 1, (cut, counts)


def test_each_domain_is_balanced_on_its_own():
    qs = questions("math", "math", 40) + questions("code", "code", 40) + questions("logic", "choice", 40)
    p = plan(qs, n=2)
    for domain in ("math", "code", "logic"):
        counts = style_counts(p, f"q{domain}")
        assert max(counts.values()) - min(counts.values()) <= 1, (domain, counts)
    assert set(style_counts(p, "qcode")) == {"code_first", "markdown_headings", "numbered_steps", "bullets"}
    assert "table" not in style_counts(p, "qlogic")  # no table for a choice answer


def test_per_domain_weights_set_the_shares():
    qs = questions("math", "math", 200) + questions("science", "numeric", 100)
    p = plan(qs, n=1, formats=["prose", "boxed", "bullets"], mix={"weights": {"math": {"boxed": 3, "bullets": 0}}})
    math = style_counts(p, "qmath")
    assert math == Counter({"boxed": 150, "prose": 50})  # 3:1, bullets removed for math only
    science = style_counts(p, "qscience")
    assert max(science.values()) - min(science.values()) <= 1 and len(science) == 3


def test_the_n_samples_of_a_question_ask_for_different_styles():
    p = plan(questions("math", "math", 30), n=4)
    for qid in {q for q, _ in p}:
        assert len({p[(qid, i)].style for i in range(4)}) == 4
    # More samples than allowed styles: every allowed style once, then repeats.
    code = plan(questions("code", "code", 5), n=6)
    for qid in {q for q, _ in code}:
        assert len({code[(qid, i)].style for i in range(6)}) == 4


def test_plan_is_deterministic_for_a_seed_and_independent_of_input_order():
    qs = questions("math", "math", 60) + questions("science", "numeric", 60)
    shuffled = qs[:]
    random.Random(7).shuffle(shuffled)
    assert plan(qs, n=3) == plan(shuffled, n=3)
    other = plan(qs, n=3, seed=1)
    differ = sum(other[k].style != c.style for k, c in plan(qs, n=3).items())
    assert differ > len(other) // 2  # another seed deals another plan, just as balanced
    counts = style_counts(other, "qmath")
    assert max(counts.values()) - min(counts.values()) <= 1


def test_exclusions_that_leave_nothing_fail_with_a_clear_message():
    with pytest.raises(ValueError, match="no answer format is allowed for domain 'code', answer type 'code'"):
        plan(questions("code", "code", 2), formats=["prose", "boxed"])


def test_placement_and_length_band_follow_weights_and_skip_fixed_layouts():
    p = plan(questions("math", "math", 200), n=2, formats=["prose", "terse_final"],
             mix={"placements": {"last": 1, "first": 1}, "length_bands": {"any": 2, "short": 1, "long": 1}})
    free = [c for c in p.values() if c.style == "prose"]
    fixed = [c for c in p.values() if c.style == "terse_final"]
    assert len(free) == len(fixed) == 200
    assert all(c.placement is None and c.length_band is None for c in fixed)
    assert Counter(c.placement for c in free) == {"last": 100, "first": 100}
    assert Counter(c.length_band for c in free) == {"any": 100, "short": 50, "long": 50}


def test_perturbations_cover_every_option_and_can_be_switched_off():
    p = plan(questions("math", "math", 150), n=2)
    config = SynthesisConfig()
    seen = [c.perturbation for c in p.values()]
    assert {x.system for x in seen} == set(range(len(system_prompts(config))))
    assert {x.phrasing for x in seen} == set(range(len(config.perturbation.phrasings)))
    assert {x.order for x in seen} == {"question_first", "instruction_first"}
    assert {x.markup for x in seen} == set(config.perturbation.markups)
    assert len({x.seed for x in seen}) == len(seen)
    off = plan(questions("math", "math", 20), n=2, perturbation={"enabled": False})
    assert {(x.perturbation.system, x.perturbation.phrasing, x.perturbation.order, x.perturbation.markup)
            for x in off.values()} == {(0, 0, "question_first", "plain")}


# --- prompts ------------------------------------------------------------------------------------


def test_prompt_is_rebuilt_exactly_from_the_stored_choice():
    config = SynthesisConfig(n=3)
    p = plan_formats(questions("math", "math", 40), config, len(system_prompts(config)))
    for (qid, i), choice in p.items():
        messages = build_messages(f"What is {qid}?", choice, config)
        stored = (choice.style, choice.placement, choice.length_band, choice.perturbation.model_dump_json())
        again = FormatChoice(stored[0], stored[1], stored[2], Perturbation.model_validate_json(stored[3]))
        assert build_messages(f"What is {qid}?", again, config) == messages
        # The seed alone redraws the same perturbation.
        redrawn = Perturbation.draw(choice.perturbation.seed, config.perturbation, len(system_prompts(config)))
        assert redrawn == choice.perturbation


def test_prompt_parts_follow_the_perturbation():
    config = SynthesisConfig(think_mode="forced")
    base = Perturbation(seed=1, system=1, phrasing=1, order="instruction_first", markup="markdown")
    choice = FormatChoice("table", "first", "short", base)
    messages = build_messages("How many clips?", choice, config)
    assert [m["role"] for m in messages] == ["user"]  # system prompt 1 is "none"
    content = messages[0]["content"]
    instruction = "Format: " + " ".join([FORMATS["table"].instruction, PLACEMENTS["first"], LENGTH_BANDS["short"]])
    assert content == f"### Answer format\n{instruction}\n\n### Problem\nHow many clips?"
    xml = build_messages("Q?", FormatChoice("json_object", None, None,
                                            base.model_copy(update={"system": 0, "markup": "xml_tags",
                                                                    "order": "question_first", "phrasing": 0})),
                         config)
    assert xml[0] == {"role": "system", "content": config.system_prompt}
    assert xml[1]["content"] == f"<question>\nQ?\n</question>\n<format>\n{FORMATS['json_object'].instruction}\n</format>"
    # think_mode prompted (the default) asks for the reasoning / answer layout after everything else.
    prompted = build_messages("How many clips?", choice, SynthesisConfig())
    assert prompted[0]["content"] == content + "\n\n" + (
        "First write 'Reasoning:' and think step by step. Then write 'Answer:' on a line of its own; below it, "
        "present the key quantities or steps in a markdown table, then state the final answer. "
        "State the final answer first, then the explanation. Keep the answer short: at most about 60 words.")


def test_custom_formats_from_config_are_planned_and_detected():
    from filters.text.format_detect import StyleDetector

    config = SynthesisConfig(n=1, formats=["prose", "qed"],
                             custom_formats=[{"name": "qed", "instruction": "End with 'Q.E.D.'", "pattern": r"Q\.E\.D\.\s*$"}])
    p = plan_formats(questions("math", "math", 10), config, 1)
    assert Counter(c.style for c in p.values()) == {"prose": 5, "qed": 5}
    choice = next(c for c in p.values() if c.style == "qed")
    assert "End with 'Q.E.D.'" in build_messages("Prove it.", choice, config)[-1]["content"]
    detector = StyleDetector({"qed": config.custom_formats[0].pattern})
    assert detector.realized("It holds for all n. Hence done. Q.E.D.") == "qed"
    with pytest.raises(ValueError, match="pattern is not a valid regular expression"):
        SynthesisConfig(custom_formats=[{"name": "bad", "instruction": "x", "pattern": "("}])


def test_reasoning_containers_follow_their_weights():
    p = plan(questions("math", "math", 100), n=2)
    assert Counter(c.reasoning_container for c in p.values()) == {"think_tags": 150, "reasoning_field": 50}
    only_tags = plan(questions("math", "math", 10), n=2, mix={"reasoning_containers": {"think_tags": 1}})
    assert {c.reasoning_container for c in only_tags.values()} == {"think_tags"}
