"""The rollout state machine, driven by a scripted model (a fake engine: this tests orchestration
only) against the real environments, through verification, the trace rules, the store and the
export check: the path the vLLM rollouts will take."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from filters.trace import build_trace_rules
from pipeline.agentic.envs import make
from pipeline.agentic.perturb.response_format import TRANSIENT_ERROR, ResponseChoice
from pipeline.agentic.rollout import Rollout
from pipeline.agentic.store import read_trajectories, write_trajectories
from pipeline.agentic.tasks.db_questions import generate
from pipeline.agentic.verify import match_db_answer, verify_outcome
from pipeline.store import Store
from schemas.agentic import Task, Verification
from tests.agentic.traces import row


def hermes(name: str, arguments: dict) -> str:
    return f'<tool_call>\n{json.dumps({"name": name, "arguments": arguments})}\n</tool_call>'


def count_task() -> Task:
    return next(t for t in generate(seed=2, n=10) if t.text.startswith("How many customers"))


def scripted_db_model(r: Rollout) -> str:
    """Looks at the tables, counts with SQL, answers with the number it observed."""
    assistant_turns = sum(m.role == "assistant" for m in r.messages)
    city = r.task.text.split("live in ")[1].split("?")[0]
    if assistant_turns == 0:
        return "<think>I should see which tables the shop database has.</think>\n" + hermes("list_tables", {})
    last = r.messages[-1]
    if last.tool_status == "error":
        return "<think>The tool failed with an error; retry the same call.</think>\n" + hermes(
            last.name, json.loads(r.messages[-2].tool_calls[0].model_dump_json())["arguments"])
    if assistant_turns == 1 or last.name == "list_tables":
        return ("<think>There is a customers table; count the customers in that city.</think>\n"
                + hermes("query", {"sql": f"SELECT count(*) FROM customers WHERE city = '{city}'"}))
    n = json.loads(last.content)["result"]["rows"][0][0]
    return f"<think>The query returned {n} customers.</think>\nFinal answer: {n}"


def run(r: Rollout, model) -> Rollout:
    while not r.done:
        request = r.request()
        assert request["tools"] and request["messages"][-1]["role"] in ("user", "tool")
        r.advance(model(r), prompt_tokens=100, completion_tokens=20)
    return r


def test_a_scripted_rollout_is_verified_clean_stored_and_exportable(tmp_path: Path):
    task = count_task()
    r = run(Rollout(task, make(task.environment), model="scripted", seed=1), scripted_db_model)
    traj = r.trajectory()
    assert traj.trajectory_id == r.trajectory_id  # known before the rollout ran
    assert traj.outcome.status == "answered" and traj.outcome.final_answer == task.verification.reference
    assert traj.steps == 2 and traj.prompt_tokens == 300 and traj.completion_tokens == 60
    assert verify_outcome(traj).passed is True
    assert [m.role for m in traj.messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert all(m.reasoning for m in traj.messages if m.role == "assistant")
    for rule in build_trace_rules():
        assert rule.check(row(traj.messages, question=task.text, tools=[t.model_dump() for t in traj.tools])).passed, \
            rule.name
    with Store(tmp_path / "r.duckdb") as store:
        assert write_trajectories(store, [traj], run_id="r1") == 1
        assert read_trajectories(store) == [traj]
    # The request the engine gets: thinking kept in every earlier turn, calls as dicts.
    request = Rollout(task, make(task.environment), model="scripted", seed=1)
    request.advance(scripted_db_model(request))
    shown = request.request()["messages"]
    assert shown[1]["content"].startswith("<think>\nI should see which tables")
    assert shown[1]["tool_calls"][0]["function"] == {"name": "list_tables", "arguments": {}}


def test_transient_error_then_retry_passes_the_rules():
    task = count_task()
    r = run(Rollout(task, make(task.environment), model="scripted", seed=2,
                    response=ResponseChoice(seed=2, format="json", transient_error_at=1)), scripted_db_model)
    traj = r.trajectory()
    statuses = [m.tool_status for m in traj.messages if m.role == "tool"]
    assert statuses == ["ok", "error", "ok"] and TRANSIENT_ERROR in traj.messages[4].content
    assert traj.perturbations["transient_error_at"] == 1 and traj.perturbations["call_syntax"] == "hermes"
    assert verify_outcome(traj).passed
    tools = [t.model_dump() for t in traj.tools]
    failed = [rule.name for rule in build_trace_rules()
              if not rule.check(row(traj.messages, question=task.text, tools=tools)).passed]
    assert failed == []


def test_step_cap_length_and_disallowed_tools():
    task = count_task().model_copy(update={"tools": ["query"]})
    looping = lambda r: "<think>Check the tables again, to be sure.</think>" + hermes("list_tables", {})  # noqa: E731
    r = run(Rollout(task, make(task.environment), model="scripted", seed=3, max_steps=3), looping)
    traj = r.trajectory()
    assert traj.outcome.status == "step_cap" and traj.steps == 3
    assert all("unknown tool 'list_tables'" in m.content for m in traj.messages if m.role == "tool")
    assert [t.name for t in traj.tools] == ["query"]
    cut = Rollout(task, make(task.environment), model="scripted", seed=4)
    assert cut.advance("<think>Let me think about this for a long", finish_reason="length")
    assert cut.trajectory().outcome.status == "length"
    assert verify_outcome(cut.trajectory()).passed is False


def test_an_unparsable_call_is_shown_back_and_fails_its_rule():
    task = count_task()
    r = Rollout(task, make(task.environment), model="scripted", seed=5)
    r.advance("<think>Count them with one query.</think>\n"
              '<tool_call>\n{"name": "query", "arguments": {sql: 1}}\n</tool_call>')
    shown = r.request()["messages"]
    assert '{"name": "query", "arguments": {sql: 1}}' in shown[-2]["content"] and "tool_calls" not in shown[-2]
    assert shown[-1]["role"] == "user" and shown[-1]["content"].startswith("Tool call error: ")
    r.advance("<think>I wrote bad JSON; the error says so. I give up.</think>Final answer: 3")
    traj = r.trajectory()
    rule = {x.name: x for x in build_trace_rules()}["unparsable_call"]
    assert not rule.check(row(traj.messages, question=task.text, tools=[t.model_dump() for t in traj.tools])).passed


def test_calculator_rollout_with_a_math_reference():
    task = Task(source="generated", generator="hand@1", domain="math", text="What is 2^10 + sqrt(16)?",
                environment="calculator@1", tools=["evaluate"],
                verification=Verification(kind="math", reference="1028"))

    def model(r: Rollout) -> str:
        if len(r.messages) == 1:
            return "<think>Evaluate the expression exactly with the calculator.</think>" + hermes(
                "evaluate", {"expression": "2^10 + sqrt(16)"})
        value = json.loads(r.messages[-1].content)["result"]["exact"]
        return f"<think>The calculator gives {value}.</think>The answer is \\boxed{{{value}}}."

    traj = run(Rollout(task, make(task.environment), model="scripted", seed=1), model).trajectory()
    assert traj.outcome.final_answer == "1028" and verify_outcome(traj).passed is True


@pytest.mark.parametrize("answer, reference, ok", [("34.1", "34.10", True), ("10", "11", False),
                                                   ("Eco Kettle, Deluxe Trowel", "Eco Kettle, Deluxe Trowel", True),
                                                   ("Deluxe Trowel, Eco Kettle", "Eco Kettle, Deluxe Trowel", False),
                                                   ("1,234", "1234", True), ("lyon", "Lyon", True)])
def test_db_answers(answer, reference, ok):
    assert match_db_answer(answer, reference).passed is ok


def test_the_last_turn_is_kept_as_written_up_to_its_last_call():
    """What an engine may send back as generated: the turn as the model wrote it (thinking and
    call, whitespace and all), without the text after the call that the history drops."""
    task = count_task()
    r = Rollout(task, make(task.environment), model="scripted", seed=0)
    written = "<think>\n  I list the tables first. \n</think>\n" + hermes("list_tables", {})
    r.advance(written + "\n<tool_response>a guessed result", None)
    assert r.last_turn_text == written
    assert r.messages[1].reasoning == "I list the tables first."  # stored parsed, as before
    r.advance("<think>I know enough.</think>\nFinal answer: 3", None)
    assert r.last_turn_text == "<think>I know enough.</think>\nFinal answer: 3" and r.done
