"""Perturbations: deterministic by seed, recorded, renames consistent everywhere, and every call
syntax parses back to the calls it rendered."""

from __future__ import annotations

import json
from collections import Counter

import jsonschema
import pytest
import yaml

from filters.trace import TRACE_RULES
from pipeline.agentic.envs import make
from pipeline.agentic.envs.calculator import Calculator
from pipeline.agentic.envs.python_exec import PythonExecutor
from pipeline.agentic.envs.shop_db import ShopDb
from pipeline.agentic.perturb.call_syntax import CALL_SYNTAXES, parse_calls, render_calls
from pipeline.agentic.perturb.render import RenderChoice, render_text
from pipeline.agentic.perturb.rename import Rename
from pipeline.agentic.perturb.response_format import (TRANSIENT_ERROR, FlakyEnvironment, ResponseChoice,
                                                      render_observation, shape)
from pipeline.agentic.perturb.tool_docs import TOOL_DOCS, render_tool_docs
from schemas.agentic import Message, ToolCall
from tests.agentic.traces import clean, row

ALL_TOOLS = ShopDb.tools + Calculator.tools + PythonExecutor.tools
OBSERVATION = {"result": {"columns": ["name", "units"], "rows": [["Eco Kettle", 12], ["Deluxe Trowel", 9]]}}


# --- rollout time -----------------------------------------------------------------------------

def test_response_choices_are_deterministic_and_cover_every_axis():
    assert ResponseChoice.draw(7) == ResponseChoice.draw(7)
    choices = [ResponseChoice.draw(s) for s in range(60)]
    assert set(Counter(c.format for c in choices)) == {"json", "json_compact", "yaml", "table"}
    assert set(Counter(c.key_order for c in choices)) == {"original", "sorted", "shuffled"}
    assert {c.extra_fields for c in choices} == {0, 1, 2}
    assert any(c.transient_error_at is None for c in choices) and any(c.transient_error_at is not None
                                                                        for c in choices)
    assert ResponseChoice.draw(7).record()["response_seed"] == 7


@pytest.mark.parametrize("fmt", ["json", "json_compact", "yaml"])
def test_structured_formats_carry_the_same_data(fmt):
    choice = ResponseChoice(seed=3, format=fmt, key_order="shuffled", extra_fields=2)
    text = render_observation(OBSERVATION, choice, call_index=1)
    data = yaml.safe_load(text)  # JSON is YAML too
    assert data["result"] == OBSERVATION["result"]
    assert len(data) == 3  # two irrelevant fields beside the result
    assert text == render_observation(OBSERVATION, choice, call_index=1)  # the same seed, the same text


def test_table_format_and_key_order():
    text = render_observation(OBSERVATION, ResponseChoice(seed=1, format="table"), 0)
    assert "| name          | units |" in text and "| Deluxe Trowel | 9     |" in text
    shuffled = [list(shape({k: 1 for k in "abcdef"}, ResponseChoice(seed=s, key_order="shuffled"), 0))
                for s in range(5)]
    assert len({tuple(s) for s in shuffled}) > 1
    assert list(shape({"b": 1, "a": {"d": 1, "c": 2}}, ResponseChoice(seed=1, key_order="sorted"), 0)["a"]) == \
        ["c", "d"]


def test_one_transient_error_then_success():
    env = FlakyEnvironment(make("shop_db@1"), fail_at=1)
    assert env.call("list_tables", {}).ok
    failed = env.call("query", {"sql": "SELECT 1 AS x"})
    assert failed.status == "error" and failed.error == TRANSIENT_ERROR
    assert env.call("query", {"sql": "SELECT 1 AS x"}).content == {"columns": ["x"], "rows": [[1]]}
    assert env.state_hash() == ShopDb().state_hash()


# --- render time: renames ---------------------------------------------------------------------

def _with_mentions() -> list[Message]:
    return clean() + [Message(role="assistant", reasoning="Maybe call `query` again with sql='SELECT 2', "
                              "or list_tables(), or describe(table='orders'); the query returned 10 rows.",
                              content="Final answer: 10")]


@pytest.mark.parametrize("seed", range(8))
def test_rename_is_consistent_everywhere(seed):
    rename = Rename.draw(seed, ShopDb.tools)
    assert rename == Rename.draw(seed, ShopDb.tools)
    assert set(rename.tools.values()).isdisjoint(rename.tools)  # every tool renamed, to a free name
    before = _with_mentions()
    assert rename.survivors(before) == ["describe", "list_tables", "query", "sql", "table"]
    specs, messages = rename.apply(ShopDb.tools, before)
    assert rename.survivors(messages) == []
    text = json.dumps([s.model_dump() for s in specs])
    assert "list_tables" not in text and '"query"' not in text and '"sql"' not in text
    names = {s.name: s for s in specs}
    for _, c in ((i, c) for m in messages for i, c in enumerate(m.tool_calls or [])):
        jsonschema.validate(c.arguments, names[c.name].parameters)  # calls fit the renamed specs
    assert all(m.name in names for m in messages if m.role == "tool")
    assert "the query returned 10 rows" in messages[-1].reasoning  # prose is prose
    for rule in ("unknown_tool", "call_arguments", "repeated_call"):
        assert TRACE_RULES[rule]().check(row(messages, tools=[s.model_dump() for s in specs])).passed


def test_rename_covers_every_environment():
    rename = Rename.draw(1, ALL_TOOLS)
    assert len(set(rename.tools.values())) == len(ALL_TOOLS)
    for spec in ALL_TOOLS:
        assert set(rename.spec(spec).parameters["properties"]) == set(rename.params[spec.name].values())


# --- render time: tool docs, call syntax, the whole choice ------------------------------------

CALLS = [ToolCall(id="call_0", name="query",
                  arguments={"sql": "SELECT name FROM t WHERE x = 'it''s' -- \"q\"\nLIMIT 2"}),
         ToolCall(id="call_1", name="evaluate", arguments={"expression": "2^10 + sqrt(16)", "digits": 12}),
         ToolCall(id="call_2", name="solve",
                  arguments={"equations": ["x + y = 3", "x - y = 1"], "variables": ["x", "y"]}),
         ToolCall(id="call_3", name="list_tables", arguments={}),
         ToolCall(id="call_4", name="run_python", arguments={"code": "print('héllo')\nx = [1, {'a': None}]\nx"})]


@pytest.mark.parametrize("syntax", CALL_SYNTAXES)
def test_parse_render_round_trip(syntax):
    for calls in ([CALLS[0]], CALLS):
        for content in (None, "Let me look that up [first]."):
            text = render_calls(syntax, calls, content)
            parsed_content, parsed = parse_calls(syntax, text, ALL_TOOLS)
            assert parsed == calls, text
            assert parsed_content == (content or "")


@pytest.mark.parametrize("syntax, text", [
    ("hermes", '<tool_call>\n{"name": "query", "arguments": {"sql": }\n</tool_call>'),
    ("hermes", 'Checking.\n<tool_call>\n{"name": "query", "argu'),
    ("openai_json", '{"tool_calls": [{"type": "function", "function": {"name": "query", "arguments": "{bad"}}]}'),
    ("xml_invoke", '<invoke name="query">\n<parameter name="sql">SELECT 1</parameter>\nstray</invoke>'),
    ("pythonic", "[query(sql='SELECT 1'), evaluate(1 + )]"),
    ("pythonic", "[query('SELECT 1')]"),
])
def test_unreadable_calls_come_back_with_a_parse_error(syntax, text):
    _, calls = parse_calls(syntax, text, ALL_TOOLS)
    assert len(calls) == 1 and calls[0].parse_error and calls[0].arguments is None and calls[0].raw


def test_untagged_hermes_calls_as_qwen_writes_them():
    # Qwen2.5-Coder-1.5B's turns, copied from its template's {{...}} example without the tags.
    doubled = '{{"name": "query", "arguments": {"sql": "SELECT count(*) FROM customers"}}}'
    content, calls = parse_calls("hermes", f"{doubled}\nFinal answer: 3", ALL_TOOLS)
    assert content == "Final answer: 3"
    assert [(c.name, c.arguments) for c in calls] == [("query", {"sql": "SELECT count(*) FROM customers"})]
    two = '{"name": "describe", "arguments": {"table": "orders"}} then {"name": "list_tables", "arguments": {}}'
    assert [c.name for c in parse_calls("hermes", two, ALL_TOOLS)[1]] == ["describe", "list_tables"]
    # Not a call: JSON whose name is no tool (an answer in JSON), or text without the tools known.
    answer = '{"name": "Alice", "arguments": {"age": 3}}'
    assert parse_calls("hermes", answer, ALL_TOOLS) == (answer, [])
    assert parse_calls("hermes", doubled, None) == (doubled, [])
    # A turn ends at its last call: the guess written after it is dropped.
    assert parse_calls("hermes", f"Look. {doubled}\nFinal answer: 3", ALL_TOOLS, stop_after_calls=True)[0] == "Look."
    tagged_then_guess = render_calls("hermes", [CALLS[0]], "Look.") + "\nFinal answer: 3"
    assert parse_calls("hermes", tagged_then_guess, ALL_TOOLS, stop_after_calls=True) == ("Look.", [CALLS[0]])
    assert parse_calls("hermes", "Final answer: 3", ALL_TOOLS, stop_after_calls=True) == ("Final answer: 3", [])
    # With tags present, only the tagged calls count.
    tagged = render_calls("hermes", [CALLS[0]], "Look: " + doubled)
    assert parse_calls("hermes", tagged, ALL_TOOLS)[1] == [CALLS[0]]


def test_no_calls_is_no_calls():
    for syntax in CALL_SYNTAXES:
        assert parse_calls(syntax, "Final answer: 10 [see above]", ALL_TOOLS) == ("Final answer: 10 [see above]", [])


@pytest.mark.parametrize("style", TOOL_DOCS)
def test_tool_docs_name_every_tool_and_parameter(style):
    docs = render_tool_docs(ALL_TOOLS, style)
    for spec in ALL_TOOLS:
        assert spec.name in docs
        assert all(p in docs for p in spec.parameters["properties"])
    if style == "python":
        assert "def evaluate(expression: str, digits: int = None) -> dict:" in docs
        assert "def solve(equations: list[str], variables: list[str] = None) -> dict:" in docs


def test_render_choice_is_deterministic_and_spreads():
    assert RenderChoice.draw(11, ALL_TOOLS) == RenderChoice.draw(11, ALL_TOOLS)
    choices = [RenderChoice.draw(s, ALL_TOOLS) for s in range(60)]
    assert {c.call_syntax for c in choices} == set(CALL_SYNTAXES)
    assert {c.tool_docs for c in choices} == set(TOOL_DOCS)
    assert len({tuple(c.tool_order) for c in choices}) > 10
    assert {c.rename is None for c in choices} == {True, False}


@pytest.mark.parametrize("seed", range(6))
def test_rendered_text_parses_back_to_the_renamed_calls(seed):
    choice = RenderChoice.draw(seed, ShopDb.tools, rename_rate=1.0)
    rendered = render_text(choice, ShopDb.tools, clean())
    renamed_specs = [choice.rename.spec(s) for s in ShopDb.tools]
    calls = [c for m in rendered if m["role"] == "assistant"
             for c in parse_calls(choice.call_syntax, m["content"], renamed_specs)[1]]
    assert [(c.name, c.arguments) for c in calls] == [
        (choice.rename.tools["list_tables"], {}),
        (choice.rename.tools["query"], {choice.rename.params["query"]["sql"]:
                                        "SELECT count(*) FROM customers WHERE city = 'Leeds'"})]
    assert "list_tables" not in rendered[0]["content"]
