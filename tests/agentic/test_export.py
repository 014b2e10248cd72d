"""Export: a trajectory as an OpenAI-shape chat record (tool_calls, tool turns, reasoning in both
keys or <think> tags, a history policy), checked through Qwen2.5's real chat template."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from pipeline.agentic.export import chat_record, template_problems
from pipeline.agentic.perturb.call_syntax import parse_calls
from pipeline.agentic.perturb.render import RenderChoice
from schemas.agentic import Message
from tests.agentic.test_store import trajectory
from tests.agentic.traces import call, clean, observation

QWEN = Path("/work/main/.curate/models/Qwen2.5-Coder-1.5B-Instruct")


def test_record_shape_with_both_reasoning_keys():
    record = chat_record(trajectory())
    roles = [m["role"] for m in record["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant"]
    first = record["messages"][2]
    assert first["reasoning_content"] == first["reasoning"] == clean()[2].reasoning
    assert first["tool_calls"] == [{"id": "c1", "type": "function", "function": {"name": "list_tables",
                                                                                  "arguments": "{}"}}]
    assert json.loads(record["messages"][4]["tool_calls"][0]["function"]["arguments"]) == {
        "sql": "SELECT count(*) FROM customers WHERE city = 'Leeds'"}
    assert record["messages"][3] == {"role": "tool", "tool_call_id": "c1", "name": "list_tables",
                                     "content": clean()[3].content}
    assert [t["function"]["name"] for t in record["tools"]] == ["list_tables", "describe", "query"]
    assert "<think>" not in json.dumps(record)


def test_think_tags_inline():
    record = chat_record(trajectory(), reasoning_in="think_tags")
    last = record["messages"][-1]
    assert last["content"] == "<think>\nThe query returned 10 customers in Leeds.\n</think>\n\nFinal answer: 10"
    assert "reasoning_content" not in last
    assert record["messages"][2]["content"].startswith("<think>\nI need the customers table")
    both = chat_record(trajectory(), reasoning_in="both")["messages"][-1]
    assert both["reasoning"] and both["content"].startswith("<think>")


def _two_user_turns() -> list[Message]:
    follow_up = [Message(role="user", content="And in Lyon?"),
                 Message(role="assistant", reasoning="Same query with Lyon instead of Leeds.",
                         tool_calls=[call("c3", "query",
                                          {"sql": "SELECT count(*) FROM customers WHERE city = 'Lyon'"})]),
                 observation("c3", "query", {"result": {"columns": ["count(*)"], "rows": [[7]]}}),
                 Message(role="assistant", reasoning="Lyon has 7.", content="Final answer: 7")]
    return clean() + follow_up


def test_history_policies():
    traj = trajectory(messages=_two_user_turns())
    kept = [m.get("reasoning") for m in chat_record(traj)["messages"] if m["role"] == "assistant"]
    assert all(kept) and len(kept) == 5
    dropped = [m.get("reasoning") for m in chat_record(traj, history="drop_before_last_user")["messages"]
               if m["role"] == "assistant"]
    assert dropped == [None, None, None, "Same query with Lyon instead of Leeds.", "Lyon has 7."]


def test_render_choice_renames_the_record():
    choice = RenderChoice.draw(2, trajectory().tools, rename_rate=1.0)
    record = chat_record(trajectory(), render=choice)
    names = [t["function"]["name"] for t in record["tools"]]
    assert sorted(names) == sorted(choice.rename.tools.values())
    assert names == [choice.rename.tools[n] for n in choice.tool_order]
    calls = [c["function"]["name"] for m in record["messages"] for c in m.get("tool_calls", [])]
    assert calls == [choice.rename.tools["list_tables"], choice.rename.tools["query"]]


def test_unparsable_calls_are_not_exported():
    messages = clean()
    messages[4] = messages[4].model_copy(update={"tool_calls": [call("c2", None, None, raw="{", parse_error="bad")]})
    with pytest.raises(ValueError, match="could not be parsed"):
        chat_record(trajectory(messages=messages))


@pytest.fixture(scope="module")
def qwen_tokenizer():
    if not (QWEN / "tokenizer.json").exists():
        pytest.skip(f"no Qwen2.5 tokenizer at {QWEN}")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(QWEN)


@pytest.mark.parametrize("reasoning_in", ["fields", "think_tags"])
def test_round_trip_through_qwen_template(qwen_tokenizer, reasoning_in):
    traj = trajectory(messages=_two_user_turns())
    record = chat_record(traj, reasoning_in=reasoning_in)
    assert template_problems(record, qwen_tokenizer, max_tokens=4096) == []
    renamed = chat_record(traj, render=RenderChoice.draw(4, traj.tools, rename_rate=1.0))
    assert template_problems(renamed, qwen_tokenizer, max_tokens=4096) == []
    text = qwen_tokenizer.apply_chat_template(
        [m | {"tool_calls": [{"function": {"name": c["function"]["name"],
                                           "arguments": json.loads(c["function"]["arguments"])}}
                             for c in m["tool_calls"]]} if "tool_calls" in m else m for m in record["messages"]],
        tools=record["tools"], tokenize=False)
    assert len(parse_calls("hermes", text.split("And in Lyon?")[1])[1]) == 1


def test_template_check_catches_dropped_thinking_and_length(qwen_tokenizer):
    record = chat_record(trajectory())
    assert template_problems(record, qwen_tokenizer, max_tokens=50)[-1].startswith("too long")
    # A template that strips thinking from assistant turns with calls (as some templates do).
    dropping = copy.copy(qwen_tokenizer)
    dropping.chat_template = qwen_tokenizer.chat_template.replace(
        "{{- '\\n' + message.content }}", "{{- '\\n' + message.content.split('</think>')[-1] }}")
    assert dropping.chat_template != qwen_tokenizer.chat_template
    problems = template_problems(record, dropping, max_tokens=4096)
    assert problems == ["message 2: the chat template dropped its thinking",
                        "message 4: the chat template dropped its thinking"]
