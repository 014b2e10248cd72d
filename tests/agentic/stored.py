"""Hand-written trajectories in two environments (shop_db@1, calculator@1), stored as the rollout
stage stores them: verified by outcome (runner.store_finished, the real verifiers) and checked by
the real trace rules (runner.trace_rule_pass). For the difficulty and trace-export tests."""

from __future__ import annotations

from pipeline.agentic.envs.calculator import Calculator
from pipeline.agentic.envs.shop_db import ShopDb
from pipeline.agentic.runner import store_finished, trace_rule_pass
from pipeline.store import Store
from schemas.agentic import Message, Outcome, Task, Trajectory, Verification
from tests.agentic.traces import call, clean, observation


def shop_task(city: str = "Leeds", count: int = 10) -> Task:
    return Task(source="generated", generator="shop_db_questions@1", generator_seed=len(city), domain="data",
                text=f"How many customers of the shop live in {city}?", environment="shop_db@1",
                tools=["list_tables", "describe", "query"],
                verification=Verification(kind="db_answer", reference=str(count),
                                          reference_query=f"SELECT count(*) FROM customers WHERE city='{city}'"))


def shop(seed: int, answer: str = "10", task: Task | None = None, messages: list[Message] | None = None) -> Trajectory:
    """The clean Leeds trace (tests/agentic/traces.py), answering `answer` (10 is right)."""
    messages = clean() if messages is None else messages
    if answer != "10":
        messages = messages[:-1] + [messages[-1].model_copy(update={"content": f"Final answer: {answer}"})]
    return Trajectory(task=task or shop_task(), environment="shop_db@1", seed=seed, model="m",
                      perturbations={"response_format": "json"}, tools=ShopDb.tools, messages=messages,
                      outcome=Outcome(status="answered", final_answer=answer), steps=2,
                      final_state_hash=ShopDb().state_hash())


def calc_task() -> Task:
    return Task(source="pool", question_id="q-mult", domain="math", text="What is 17 * 23?",
                environment="calculator@1", tools=["evaluate", "simplify", "solve"],
                verification=Verification(kind="math", reference="391"))


def calc(seed: int, answer: str = "391") -> Trajectory:
    """Think, evaluate 17*23, think, answer (391 is right)."""
    messages = [
        Message(role="system", content="You can use a calculator."),
        Message(role="user", content="What is 17 * 23?"),
        Message(role="assistant", reasoning="I multiply 17 by 23 with the calculator to be exact.",
                tool_calls=[call("c1", "evaluate", {"expression": "17*23"})]),
        observation("c1", "evaluate", {"result": {"exact": "391"}}),
        Message(role="assistant", reasoning="The calculator returned 391 for the product.",
                content=f"Final answer: {answer}"),
    ]
    return Trajectory(task=calc_task(), environment="calculator@1", seed=seed, model="m",
                      perturbations={"response_format": "yaml"}, tools=Calculator.tools, messages=messages,
                      outcome=Outcome(status="answered", final_answer=answer), steps=1)


def without_reasoning_before_first_call() -> list[Message]:
    """The clean trace whose first call has no thinking before it (call_without_reasoning fails)."""
    messages = clean()
    messages[2] = messages[2].model_copy(update={"reasoning": None})
    return messages


def store_checked(store: Store, trajectories: list[Trajectory], run_id: str = "r1") -> list[str]:
    """Verify, store and rule-check the trajectories; returns their ids."""
    store_finished(store, trajectories, run_id)
    ids = [t.trajectory_id for t in trajectories]
    trace_rule_pass(store, ids, run_id)
    return ids
