"""Each trace rule passes the clean hand-written trace and fails its own spoiled one, with a reason."""

from __future__ import annotations

import pytest

from filters.registry import registered
from filters.trace import TRACE_RULES, build_trace_rules
from schemas.agentic import Message
from tests.agentic.traces import call, clean, observation, row


def rule(name: str, **params):
    return TRACE_RULES[name](params)


def spoil(index: int, **fields) -> list[Message]:
    messages = clean()
    messages[index] = messages[index].model_copy(update=fields)
    return messages


def test_the_clean_trace_passes_every_rule():
    for r in build_trace_rules():
        result = r.check(row(clean()))
        assert result.passed, (r.name, result.reason)


def test_names_are_unique_across_sample_and_trace_rules():
    assert not set(TRACE_RULES) & set(registered())
    with pytest.raises(KeyError, match="known"):
        build_trace_rules({"no_such_rule": {}})


def test_unparsable_call():
    bad = spoil(4, tool_calls=[call("c2", None, None, raw='<tool_call>{"name": "query", "arguments": {sql: }',
                                    parse_error="invalid JSON at char 34")])
    result = rule("unparsable_call").check(row(bad))
    assert not result.passed and "invalid JSON at char 34" in result.reason


def test_unknown_tool():
    bad = spoil(4, tool_calls=[call("c2", "run_sql", {"sql": "SELECT 1"})])
    result = rule("unknown_tool").check(row(bad))
    assert not result.passed and "'run_sql'" in result.reason and "list_tables" in result.reason


@pytest.mark.parametrize("arguments, says", [({"sql": 42}, "not of type 'string'"), ({}, "'sql' is a required"),
                                             ({"sql": "SELECT 1", "limit": 5}, "Additional properties")])
def test_call_arguments(arguments, says):
    bad = spoil(4, tool_calls=[call("c2", "query", arguments)])
    result = rule("call_arguments").check(row(bad))
    assert not result.passed and says in result.reason
    assert rule("unknown_tool").check(row(bad)).passed  # one failure, one rule


def _repeat(status_of_first: str) -> list[Message]:
    messages = clean()
    messages[5] = messages[5].model_copy(update={"tool_status": status_of_first})
    again = [Message(role="assistant", reasoning="Let me run the same count query once more to be sure.",
                     tool_calls=[call("c3", "query", {"sql": "SELECT count(*) FROM customers WHERE city = 'Leeds'"})]),
             observation("c3", "query", {"result": {"columns": ["count(*)"], "rows": [[10]]}})]
    return messages[:6] + again + messages[6:]


def test_repeated_call_after_success_is_a_loop_but_a_retry_after_an_error_is_not():
    result = rule("repeated_call").check(row(_repeat("ok")))
    assert not result.passed and "same arguments" in result.reason
    assert rule("repeated_call").check(row(_repeat("error"))).passed
    assert rule("repeated_call", max_repeats=1).check(row(_repeat("ok"))).passed


def test_call_after_answer():
    same_turn = spoil(4, content="Final answer: 10")
    assert "in the turn that gives the final answer" in rule("call_after_answer").check(row(same_turn)).reason
    later = clean() + [Message(role="assistant", reasoning="Let me double check the table list again.",
                               tool_calls=[call("c9", "list_tables", {})])]
    result = rule("call_after_answer").check(row(later))
    assert not result.passed and "after the answer of turn 6" in result.reason


@pytest.mark.parametrize("reasoning", [None, "", "ok query"])
def test_call_without_reasoning(reasoning):
    result = rule("call_without_reasoning").check(row(spoil(4, reasoning=reasoning)))
    assert not result.passed and "turn 4" in result.reason


def _error_then(next_step: Message) -> list[Message]:
    messages = clean()
    messages[5] = observation("c2", "query", {"error": "SQL error: no such column: town"}, status="error")
    return messages[:6] + [next_step]


def test_ignored_tool_error():
    ignored = _error_then(Message(role="assistant", reasoning="So the answer is ten customers.",
                                  content="Final answer: 10"))
    result = rule("ignored_tool_error").check(row(ignored))
    assert not result.passed and "query error of turn 5" in result.reason
    seen = _error_then(Message(role="assistant", reasoning="The column name was wrong; city is right.",
                               tool_calls=[call("c3", "list_tables", {})]))
    assert rule("ignored_tool_error").check(row(seen)).passed
    fixed = _error_then(Message(role="assistant", reasoning="Let me query with the city column.",
                                tool_calls=[call("c3", "query", {"sql": "SELECT 1"})]))
    assert rule("ignored_tool_error").check(row(fixed)).passed


def test_answer_contradicts_observation():
    result = rule("answer_contradicts_observation").check(row(spoil(6, content="Final answer: 12")))
    assert not result.passed and "final answer 12" in result.reason and "shows 10" in result.reason
    rounded = clean()
    rounded[5] = observation("c2", "query", {"result": {"columns": ["avg"], "rows": [[34.1032]]}})
    rounded[6] = rounded[6].model_copy(update={"content": "Final answer: 34.10", "reasoning": "The average is 34.10."})
    assert rule("answer_contradicts_observation").check(row(rounded)).passed


def test_hallucinated_number():
    invented = spoil(6, reasoning="The query returned 10 customers in Leeds, out of 412 customers overall.")
    result = rule("hallucinated_number").check(row(invented))
    assert not result.passed and "412" in result.reason
    derived = spoil(6, reasoning="The query returned 10 customers; twice that would be 20, so 10 it is.")
    assert rule("hallucinated_number").check(row(derived)).passed  # 20 = 10 + 10: one step from known numbers
    scaled = spoil(6, reasoning="The query returned 10 customers, times 4 stores makes 40.")
    assert not rule("hallucinated_number").check(row(scaled)).passed  # 4 is too small to check, so it explains nothing
    quoted = spoil(6, reasoning="The question asks about Leeds; the count is 10, and 2025 is not involved.")
    assert not rule("hallucinated_number").check(row(quoted)).passed
    assert rule("hallucinated_number").check(row(quoted, question="Leeds customers in 2025?")).passed


def test_batch_use_follows_the_filter_contract():
    import polars as pl

    frame = pl.DataFrame([row(clean()), row(spoil(4, reasoning=None))])
    result = rule("call_without_reasoning").check_batch(frame)
    assert result["passed"].to_list() == [True, False] and result["reason"][1].startswith("turn 4")
    assert rule("call_without_reasoning").stage == "trace"
