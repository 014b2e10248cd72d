"""Trajectories through a real DuckDB file: written with their messages, read back equal,
idempotent (resumable), and readable by the trace rules through TRACE_RULE_INPUT."""

from __future__ import annotations

from pathlib import Path

import pytest

from filters.trace import TRACE_RULES
from pipeline.agentic.envs.shop_db import ShopDb
from pipeline.agentic.store import TRACE_RULE_INPUT, existing_trajectory_ids, read_trajectories, write_trajectories
from pipeline.store import Store
from schemas.agentic import Outcome, Task, Trajectory, Verification
from tests.agentic.traces import call, clean


def trajectory(seed: int = 1, messages=None, **over) -> Trajectory:
    task = Task(source="generated", generator="shop_db_questions@1", generator_seed=5, domain="data",
                text="How many customers of the shop live in Leeds?", environment="shop_db@1",
                tools=["list_tables", "describe", "query"], verification=Verification(
                    kind="db_answer", reference="10",
                    reference_query="SELECT count(*) FROM customers WHERE city='Leeds'"))
    fields = dict(task=task, environment="shop_db@1", seed=seed, model="qwen2.5-coder-1.5b",
                  perturbations={"response_format": "yaml", "transient_error": False, "call_syntax": "hermes"},
                  tools=ShopDb.tools, messages=clean() if messages is None else messages,
                  outcome=Outcome(status="answered", final_answer="10", correct=True), steps=2,
                  prompt_tokens=812, completion_tokens=96, final_state_hash=ShopDb().state_hash())
    return Trajectory(**(fields | over))


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "agentic.duckdb") as s:
        yield s


def test_write_and_read_back_equal(store: Store):
    one, two = trajectory(1), trajectory(2, outcome=Outcome(status="step_cap", detail="8 steps"))
    assert write_trajectories(store, [one, two], run_id="r1") == 2
    assert store.count("trajectory_messages") == 2 * len(clean())
    back = read_trajectories(store)
    assert sorted(back, key=lambda t: t.seed) == [one, two]
    assert read_trajectories(store, [two.trajectory_id]) == [two]
    assert store.scalar("SELECT perturbations ->> '$.response_format' FROM trajectories LIMIT 1") == "yaml"
    assert store.scalar("SELECT tool_calls -> 0 ->> '$.name' FROM trajectory_messages "
                        "WHERE trajectory_id = ? AND turn = 4", [one.trajectory_id]) == "query"


def test_writing_again_is_a_no_op_and_resume_skips_existing(store: Store, tmp_path: Path):
    first = trajectory(1)
    assert write_trajectories(store, [first], run_id="r1") == 1
    assert write_trajectories(store, [first, trajectory(3)], run_id="r2") == 1
    assert store.count("trajectories") == 2 and store.count("trajectory_messages") == 2 * len(clean())
    planned = [trajectory(s).trajectory_id for s in (1, 2, 3)]
    assert existing_trajectory_ids(store, planned) == {planned[0], planned[2]}
    store.close()
    with Store(tmp_path / "agentic.duckdb", read_only=True) as again:  # on disk, after closing
        assert len(read_trajectories(again)) == 2


def test_trace_rules_read_the_stored_rows(store: Store):
    spoiled = clean()
    spoiled[4] = spoiled[4].model_copy(update={"tool_calls": [call("c2", "run_sql", {"sql": "SELECT 1"})]})
    good, bad = trajectory(1), trajectory(2, messages=spoiled)
    write_trajectories(store, [good, bad], run_id="r1")
    frame = store.frame(TRACE_RULE_INPUT)
    verdicts = dict(zip(frame["trajectory_id"], TRACE_RULES["unknown_tool"]().check_batch(frame)["passed"]))
    assert verdicts == {good.trajectory_id: True, bad.trajectory_id: False}
    for name, cls in TRACE_RULES.items():  # the clean stored trace passes every rule as stored
        assert cls().check(frame.filter(frame["trajectory_id"] == good.trajectory_id).row(0, named=True)).passed, name
