"""Task / ToolSpec / Message / Trajectory: ids hash content, bad shapes are errors naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.agentic import Message, Task, ToolCall, ToolSpec, Trajectory, Verification


def task(**over) -> Task:
    fields = dict(source="generated", generator="shop_db_questions@1", domain="data", text="How many?",
                  environment="shop_db@1", tools=["query"], verification=Verification(kind="db_answer", reference="3"))
    return Task(**(fields | over))


def test_task_id_hashes_content():
    assert task().task_id == task().task_id
    assert task().task_id != task(text="How many more?").task_id
    assert len(task().task_id) == 16


@pytest.mark.parametrize("over, field", [({"environment": "shop_db"}, "environment"),
                                         ({"source": "pool"}, "question_id"),
                                         ({"tools": []}, "tools"),
                                         ({"verification": {"kind": "math"}}, "reference"),
                                         ({"verification": {"kind": "code_tests", "reference": "x"}}, "tests")])
def test_bad_tasks_name_the_problem(over, field):
    with pytest.raises(ValidationError, match=field):
        task(**over)


def test_tool_spec_and_message_shapes():
    with pytest.raises(ValidationError, match="identifier"):
        ToolSpec(name="run python", description="x")
    with pytest.raises(ValidationError, match="object"):
        ToolSpec(name="f", description="x", parameters={"type": "string"})
    with pytest.raises(ValidationError, match="tool_call_id"):
        Message(role="tool", content="42")
    with pytest.raises(ValidationError, match="only an assistant"):
        Message(role="user", content="hi", tool_calls=[ToolCall(id="c1", name="f", arguments={})])


def test_trajectory_id_changes_with_seed_model_and_perturbations():
    def traj(**over):
        fields = dict(task=task(), environment="shop_db@1", seed=1, model="m", tools=[],
                      messages=[Message(role="user", content="How many?")],
                      outcome={"status": "answered", "final_answer": "3"}, steps=0)
        return Trajectory(**(fields | over))
    base = traj().trajectory_id
    assert base == traj().trajectory_id
    assert len({base, traj(seed=2).trajectory_id, traj(model="n").trajectory_id,
                traj(perturbations={"response_format": "yaml"}).trajectory_id}) == 4
    assert traj(steps=3).trajectory_id == base  # what the rollout made is not part of its id


def test_math_tasks_offer_the_configured_calculator_tools(tmp_path):
    from pipeline.agentic.tasks.pool_tasks import CALCULATOR_TOOLS, tasks_from_questions
    from pipeline.config_loading import load_run_config
    from schemas.yaml_loading import ConfigError

    row = {"question_id": "q1", "text": "What is 6 times 7?", "domain": "math", "answer_type": "math",
           "reference_answer": "42", "tests": None}
    assert tasks_from_questions([row])[0][0].tools == list(CALCULATOR_TOOLS)
    narrow = tasks_from_questions([row], ["evaluate"])[0][0]
    assert narrow.tools == ["evaluate"] and narrow.task_id != tasks_from_questions([row])[0][0].task_id
    shipped = Path(__file__).resolve().parents[2] / "configs" / "agentic.yaml"
    assert load_run_config(str(shipped)).agentic.math_tools == ["evaluate"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("agentic:\n  math_tools: [integrate]\n")
    with pytest.raises(ConfigError, match="math_tools"):
        load_run_config(str(bad))
