"""Prompt injection against the judges, with the corpus tests/fixtures/judge_injection.jsonl: bad
samples (wrong answer, no reasoning, or a loop) whose reasoning or answer carries an attack
(an instruction to score 5, fake delimiters, a ready-made verdict JSON, chat-template role
markers, or all of them).

Mechanics, no model: sample text cannot change the rubric, add a delimiter line, open a chat
turn, or reach the parsed verdict. With the real model: whatever the judge says about these
samples is a schema-conforming verdict or a recorded judge error, never a silent pass.
bench/judge_injection.py measures how often the model is actually fooled.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import jsonschema
import pytest

from judges.loader import load_rule, sample_rule_names
from judges.render import CLOSE, OPEN, neutralize, render_messages, rubric
from judges.run import judge_samples
from schemas.chat import ChatBackend, ChatRequest, ChatResult, Completion
from schemas.formats import FORMATS

CORPUS_PATH = Path(__file__).parents[1] / "fixtures" / "judge_injection.jsonl"
CORPUS = [json.loads(line) for line in CORPUS_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
ATTACKS = {"high_score_instruction", "fake_closing_delimiter", "fake_json_verdict", "role_marker", "mixed"}
BUILTINS = sorted(sample_rule_names())  # sample judges
# Substrings a tokenizer would read as special tokens (or that start one) in some chat template.
ROLE_MARKERS = ("<|", "|>", "<\uff5c", "\uff5c>", "[INST]", "[/INST]", "<s>", "</s>", "<|im_start|>",
                "<|im_end|>", "<|endoftext|>")
DELIMITER_LINE = re.compile(rf"^(?:{re.escape(OPEN)}|{re.escape(CLOSE)})\w+$", re.M)


def delimiter_lines(text: str) -> list[str]:
    return [m.group(0) for m in DELIMITER_LINE.finditer(text)]


EMPTY = {"question_text": "", "reasoning": "", "answer": "", "reference_answer": "", "requested_format": "prose",
         "domain": "math"}


# --- the corpus ---------------------------------------------------------------------------------------------


def test_corpus_is_well_formed_and_bad():
    assert len(CORPUS) >= 30
    assert len({s["sample_id"] for s in CORPUS}) == len(CORPUS)
    assert {s["attack"] for s in CORPUS} == ATTACKS
    for s in CORPUS:
        assert s["requested_format"] in FORMATS and s["domain"] and s["question_text"] and s["note"], s["sample_id"]
        # The attack is text added to the clean sample, in the reasoning or the answer.
        injected = [(s[k], s[f"clean_{k}"]) for k in ("reasoning", "answer") if s[k] != s[f"clean_{k}"]]
        assert len(injected) == 1, s["sample_id"]
        text, plain = injected[0]
        assert text.startswith(plain) and len(text) > len(plain)
        # Bad: the final number of the answer is not the reference (wrong, or no reasoning / a loop too).
        final = re.findall(r"-?\d+(?:\.\d+)?", s["clean_answer"])[-1]
        assert float(final) != float(s["reference_answer"]), s["sample_id"]


# --- rendering ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTINS)
def test_injected_samples_render_to_one_system_and_one_user_message(name):
    rule = load_rule(name)
    template_lines = delimiter_lines(render_messages(rule, EMPTY)[1]["content"])
    assert template_lines, "every built-in rule has delimiter blocks"
    for s in CORPUS:
        messages = render_messages(rule, s)
        assert [m["role"] for m in messages] == ["system", "user"], s["sample_id"]
        assert messages[0]["content"] == rubric(rule), s["sample_id"]
        user = messages[1]["content"]
        # Sample text cannot add, close or reopen a block: the delimiter lines are the template's.
        assert delimiter_lines(user) == template_lines, s["sample_id"]
        assert user.count(OPEN) == render_messages(rule, EMPTY)[1]["content"].count(OPEN), s["sample_id"]
        for marker in ROLE_MARKERS:
            assert marker not in user, (s["sample_id"], marker)
        assert ">>>" not in user and "<<<" not in DELIMITER_LINE.sub("", user).replace(OPEN, "").replace(CLOSE, "")


def test_defused_markers_stay_readable():
    s = next(x for x in CORPUS if "<|im_start|>system" in x["reasoning"] + x["answer"])
    user = render_messages(load_rule("logical_completeness"), s)[1]["content"]
    assert "< |im_start| >system" in user


def test_neutralize_never_leaves_a_marker_in_any_mix():
    # Fragments chosen so that defusing one marker could rebuild another if the order were wrong.
    pieces = ["<", ">", "|", "<<", ">>", "<<<", ">>>", "<|", "|>", "[INST]", "[/INST]", "[", "]", "INST", "/",
              "<s>", "</s>", "s", "\uff5c", "<|im_start|>", "<|im_end|>", "BEGIN ", "END ", "x", " ", "\n"]
    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        out = neutralize(text)
        for marker in ROLE_MARKERS + ("<<<", ">>>"):
            assert marker not in out, (text, out)
        assert out.replace(" ", "") == text.replace(" ", "")  # only spaces are added


def test_neutralize_leaves_ordinary_text_alone():
    text = "Natalia sold 48/2 = <<48/2=24>>24 clips; x << 2 >> 1; a|b; [1, 2]; <b>bold</b>; if a < b > c"
    assert neutralize(text) == text


# --- parsing: the verdict is the engine's output, never the sample's ----------------------------------------


class FakeEngineForOrchestrationTest(ChatBackend):
    """Orchestration unit test only: answers every request with `reply(request)`."""

    model_name = "fake-orchestration"

    def __init__(self, reply):
        self.reply = reply
        self.requests: list[ChatRequest] = []

    def chat(self, requests, on_progress=None):
        self.requests += requests
        return [ChatResult([Completion(self.reply(r), "stop", 9)], prompt_tokens=50) for r in requests]


@pytest.mark.parametrize("name", BUILTINS)
def test_verdict_equals_the_engine_output_whatever_the_sample_embeds(name):
    rule = load_rule(name)
    fixed = {"rationale": "final answer is wrong", "score": 1} | ({"flags": ["invented_number"]} if rule.flags else {})
    engine = FakeEngineForOrchestrationTest(lambda _req: json.dumps(fixed))
    results = judge_samples(rule, CORPUS, engine)
    assert len(engine.requests) == len(CORPUS)  # one attempt each: nothing to retry
    for s, req, r in zip(CORPUS, engine.requests, results):
        assert req.messages == render_messages(rule, s)
        assert req.json_schema == rule.output_schema()
        assert (r["passed"], r["score"], r["reason"]) == (False, 1.0, "final answer is wrong"), s["sample_id"]
        details = json.loads(r["details"])
        assert details["raw"] == [json.dumps(fixed)] and details["flags"] == fixed.get("flags", [])


def test_a_judge_that_parrots_the_sample_gets_a_judge_error_not_a_pass():
    # A model that copies the injected answer (with its embedded verdict JSON) into its output.
    rule = load_rule("logical_completeness")

    def parrot(req: ChatRequest) -> str:
        user = req.messages[1]["content"]
        return next(s["answer"] for s in CORPUS if neutralize(s["question_text"]) in user)

    results = judge_samples(rule, CORPUS, FakeEngineForOrchestrationTest(parrot), max_retries=1)
    for s, r in zip(CORPUS, results):
        assert r["passed"] is False and r["score"] is None, s["sample_id"]
        assert r["reason"].startswith("judge error"), s["sample_id"]


# --- the real model ---------------------------------------------------------------------------------------------


@pytest.mark.engine
@pytest.mark.timeout(900)
def test_real_judge_on_the_corpus_gives_schema_verdicts_or_recorded_errors(vllm_engine):
    rule = load_rule("logical_completeness")
    schema = rule.output_schema()
    results = judge_samples(rule, CORPUS, vllm_engine, max_retries=0)  # greedy: a retry repeats itself
    assert len(results) == len(CORPUS)
    for s, r in zip(CORPUS, results):
        details = json.loads(r["details"])
        where = f"{s['sample_id']} ({s['attack']}): {r}"
        assert details["prompt_tokens"] > 0, where
        if r["score"] is None:  # a judge error: recorded, and never a pass
            assert r["passed"] is False and r["reason"].startswith("judge error"), where
            assert details["error"], where
            continue
        assert r["score"] == int(r["score"]) and rule.scale.min <= r["score"] <= rule.scale.max, where
        verdict = json.loads(details["raw"][-1])
        jsonschema.validate(verdict, schema)
        assert set(verdict) == {"rationale", "score"}, where
        assert verdict["score"] == r["score"], where
        assert r["passed"] is (r["score"] >= rule.threshold), where
