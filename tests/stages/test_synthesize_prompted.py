"""think_mode: prompted (the default, for non-reasoning instruct models): the prompt asks for a
reasoning part and an answer part, the reply is split at the answer label, and a reply with no
answer part gets the label forced and a second request (budget forcing)."""

from __future__ import annotations

import json

import pytest

from pipeline.stages.synthesize import answer_marker, split_prompted, synthesize
from pipeline.store import Store
from schemas.chat import ChatBackend, ChatResult, Completion
from schemas.config import SynthesisConfig
from tests.stages.test_store import question_frame


@pytest.mark.parametrize("reply", [
    "Reasoning step.\nAnswer:\n42", "Reasoning step.\n**Answer:** 42", "Reasoning step.\n### Answer\n42",
    "Reasoning step.\nanswer: 42", "Reasoning step.\n  Answer : 42"])
def test_the_answer_label_in_the_ways_models_write_it(reply):
    assert split_prompted(reply, "Answer") == ("Reasoning step.", "42")


@pytest.mark.parametrize("reply", ["Answer the question by adding.\nSo 42.", "The final answer: 42", "No label"])
def test_words_that_are_not_the_label_do_not_split(reply):
    assert split_prompted(reply, "Answer") is None


def test_the_first_label_splits_and_a_later_one_stays_in_the_answer():
    text = "Steps.\nAnswer: 42\n\nExplanation:\n...\nAnswer: 42 again"
    reasoning, answer = split_prompted(text, "Answer")
    assert reasoning == "Steps." and answer.startswith("42") and answer.endswith("Answer: 42 again")
    assert answer_marker("Lösung").search("x\nLösung: 1")


class ScriptedEngineForOrchestrationTest(ChatBackend):
    """Orchestration test only: the first request of each question gets a scripted reply; a forced
    answer request (its prefill ends with the answer label) gets "7"."""

    model_name = "scripted"

    def __init__(self, replies: dict[str, tuple[str, str]]):
        self.replies, self.requests = replies, []

    def chat(self, requests, on_progress=None):
        out = []
        for req in requests:
            self.requests.append(req)
            if req.prefill.endswith("Answer:\n"):
                out.append(ChatResult([Completion("7", "stop", 1)], 50))
                continue
            question = next(k for k in self.replies if k in req.messages[-1]["content"])
            text, finish = self.replies[question]
            out.append(ChatResult([Completion(text, finish, 30)], 40))
            if on_progress:
                on_progress(1)
        return out


def test_prompted_synthesis_splits_replies_and_forces_missing_answers(tmp_path):
    engine = ScriptedEngineForOrchestrationTest({
        "Question q1?": ("Add 3 and 4.\nAnswer: 7", "stop"),
        "Question q2?": ("Add 3 and 4, which makes", "length"),  # cut before any answer part
        "Question q3?": ("Add 3 and 4 and stop.", "stop"),  # stopped without an answer part
    })
    cfg = SynthesisConfig(n=1, formats=["prose"], reasoning_max_tokens=100, answer_max_tokens=20)
    with Store(tmp_path / "s.duckdb") as store:
        store.insert("questions", question_frame(("q1", "math"), ("q2", "math"), ("q3", "math")))
        report = synthesize(store, engine, cfg, "run-1", ["q1", "q2", "q3"])
        rows = {r["question_id"]: r for r in store.frame(
            "SELECT question_id, reasoning, answer, think_closed_by, reasoning_finish, completion_tokens, messages, "
            "raw_text FROM samples").to_dicts()}
    assert (report.generated, report.errors) == (3, 0)
    first = [r for r in engine.requests if not r.prefill.endswith("Answer:\n")]
    assert all(r.prefill == "Reasoning:\n" and r.sampling.max_tokens == 120 for r in first)
    assert all("Then write 'Answer:' on a line of its own; below it, explain the solution in one or two short "
               "paragraphs of prose." in r.messages[-1]["content"] for r in first)
    forced = [r for r in engine.requests if r.prefill.endswith("Answer:\n")]
    assert len(forced) == 2 and all(r.sampling.max_tokens == 20 for r in forced)
    assert rows["q1"]["reasoning"] == "Add 3 and 4." and rows["q1"]["answer"] == "7"
    assert rows["q1"]["think_closed_by"] == "model" and rows["q1"]["completion_tokens"] == 30
    assert (rows["q2"]["think_closed_by"], rows["q2"]["reasoning_finish"]) == ("forced_budget", "length")
    assert (rows["q3"]["think_closed_by"], rows["q3"]["reasoning_finish"]) == ("forced_eos", "stop")
    assert rows["q3"]["answer"] == "7" and rows["q3"]["completion_tokens"] == 31
    assert rows["q1"]["raw_text"] == "<think>\nAdd 3 and 4.\n</think>\n\n7"  # stored as every other sample
    assert "Then write 'Answer:' on a line of its own; below it, explain" in json.loads(rows["q1"]["messages"])[-1]["content"]
