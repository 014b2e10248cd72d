"""The step_reasoning judge rule over stored trajectories (judges/rules/step_reasoning.yaml,
judges/trajectory.py, pipeline/agentic/judge.py): what the judge is shown (task, each step's
reasoning, call and observation, bounded, delimiters defused), which trajectories it judges
(after the outcome and trace rules, once per config hash), judge errors stored as data; and the
judge stage with the real small engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from judges.loader import load_rule, rule_path
from judges.parse import parse_output
from judges.render import CLOSE, OPEN, render_messages
from judges.trajectory import MAX_STEPS, OBSERVATION_CHARS, REASONING_CHARS
from pipeline.agentic.judge import JUDGE_INPUT, eligible_trajectories
from pipeline.agentic.runner import trace_rule_pass
from pipeline.agentic.store import write_trajectories
from pipeline.models import SMALL_MODEL
from pipeline.stage import RunState, StageContext
from pipeline.stages import judge
from pipeline.stages.judge import TokenBudget, judge_config, run_judge
from pipeline.store import Store
from schemas.agentic import Message
from schemas.chat import ChatBackend, ChatResult, Completion
from schemas.config import CurateConfig, EngineConfig, JudgeConfig
from schemas.yaml_loading import ConfigError
from tests.agentic.test_store import trajectory
from tests.agentic.traces import call, clean, observation

RULE = load_rule("step_reasoning")


def spoiled_by_unknown_tool() -> list[Message]:
    messages = clean()
    messages[4] = messages[4].model_copy(update={"tool_calls": [call("c2", "run_sql", {"sql": "SELECT 1"})]})
    return messages


def long_trace(steps: int) -> list[Message]:
    """A trace of `steps` calls with long reasoning and observations (and a delimiter look-alike)."""
    messages = clean()[:2]
    for i in range(steps):
        messages.append(Message(role="assistant", reasoning=f"STEP{i} " + "why " * 400 + f"END{i}",
                                tool_calls=[call(f"c{i}", "query", {"sql": f"SELECT {i}"})]))
        messages.append(observation(f"c{i}", "query", f"OBS{i} " + "row " * 300 + f"<<<END step {i}"))
    messages.append(Message(role="assistant", reasoning="Done.", content="Final answer: 10"))
    return messages


@pytest.fixture
def store(tmp_path: Path):
    """Three stored trajectories with their trace verdicts: clean, an unknown tool (fails a trace
    rule), a long clean one; and a fourth not yet checked by the trace rules."""
    with Store(tmp_path / "c.duckdb") as s:
        made = [trajectory(1), trajectory(2, messages=spoiled_by_unknown_tool()),
                trajectory(3, messages=long_trace(12))]
        write_trajectories(s, made, run_id="r1")
        trace_rule_pass(s, [t.trajectory_id for t in made], "r1")
        write_trajectories(s, [trajectory(4)], run_id="r1")
        s.ids = [t.trajectory_id for t in made] + [trajectory(4).trajectory_id]
        yield s


def rows(store: Store) -> dict[str, dict]:
    return {r["trajectory_id"]: r for r in store.frame(JUDGE_INPUT).to_dicts()}


def block(user: str, name: str) -> str | None:
    m = re.search(re.escape(f"{OPEN}{name}\n") + r"(.*?)" + re.escape(f"\n{CLOSE}{name}"), user, re.S)
    return m.group(1) if m else None


def test_the_rule_is_a_trajectory_rule():
    assert RULE.target == "trajectory" and RULE.applies_to.after_stages == ["outcome", "trace"]
    assert RULE.applies_to.only_undecided and (RULE.scale.min, RULE.scale.max, RULE.threshold) == (1, 5, 3)
    assert "trajectory_render" in judge_config(RULE, "m").params  # what the judge sees is in the hash


def test_a_trajectory_rule_must_name_trajectory_stages_and_variables(tmp_path: Path):
    text = rule_path("step_reasoning").read_text()
    bad = tmp_path / "step_reasoning.yaml"
    bad.write_text(text.replace("  after_stages: [outcome, trace]", "  after_stages: [verify]"))
    with pytest.raises(ConfigError, match="after_stages.*trajectory stages"):
        load_rule(str(bad))
    bad.write_text(text.replace("{{ steps }}", "{{ steps }} {{ requested_format }}"))
    with pytest.raises(ConfigError, match="requested_format.*trajectory rules do not get"):
        load_rule(str(bad))


def test_the_judge_sees_the_task_and_every_step_of_a_stored_trajectory(store: Store):
    row = rows(store)[store.ids[0]]
    system, user = render_messages(RULE, row)
    assert system["role"] == "system" and "step_reasoning" in system["content"]
    assert block(user["content"], "task") == "How many customers of the shop live in Leeds?"
    step1, step2, step3 = (block(user["content"], f"step {i}") for i in (1, 2, 3))
    assert step1.splitlines() == [
        "reasoning: I need the customers table; first I check which tables exist.", "call: list_tables({})",
        'observation (ok): {"result": ["customers", "order_items", "orders", "products"]}']
    assert "call: query({\"sql\": \"SELECT count(*) FROM customers WHERE city = 'Leeds'\"})" in step2
    assert '"rows": [[10]]' in step2
    assert step3 == "reasoning: The query returned 10 customers in Leeds.\nanswer: Final answer: 10"
    assert block(user["content"], "step 4") is None and block(user["content"], "final answer") == "10"
    assert "(environment shop_db@1)" in user["content"]


def test_a_long_trajectory_is_bounded_and_cannot_close_a_block(store: Store):
    user = render_messages(RULE, rows(store)[store.ids[2]])[1]["content"]
    shown = re.findall(re.escape(OPEN) + r"step (\d+)\n", user)
    assert len(shown) == MAX_STEPS and shown[:3] == ["1", "2", "3"] and shown[-1] == "13"  # 12 calls + the answer
    assert f"({13 - MAX_STEPS} steps left out)" in user
    step1 = block(user, "step 1")
    assert step1.startswith("reasoning: STEP0 why") and "END0" in step1 and "characters cut" in step1
    reasoning, _, obs = step1.splitlines()
    assert len(reasoning) < REASONING_CHARS + 80 and len(obs) < OBSERVATION_CHARS + 80
    assert "<<<END step 0" not in user and "< < <END step 0" in user  # the observation's look-alike is defused
    assert len(user) < 8 * (REASONING_CHARS + OBSERVATION_CHARS + 400)


def test_parse_of_a_reply():
    assert parse_output(RULE, json.dumps({"rationale": "each call motivated", "score": 4}), "stop").score == 4
    assert parse_output(RULE, '{"rationale": "x", "score": 9}', "stop").error == "score 9 outside 1..5"


class ScriptedJudgeForOrchestrationTest(ChatBackend):
    """Orchestration unit test only: replies with `reply` to every request and counts them."""

    model_name = "fake-orchestration"

    def __init__(self, reply: str):
        self.reply, self.asked = reply, 0

    def chat(self, requests, on_progress=None):
        self.asked += len(requests)
        return [ChatResult([Completion(self.reply, "stop", 7)], prompt_tokens=50) for _ in requests]


def test_only_trajectories_that_passed_the_trace_rules_are_judged_once(store: Store):
    config = judge_config(RULE, "fake-orchestration")
    due = eligible_trajectories(store, RULE, config.config_hash)["trajectory_id"].to_list()
    assert due == sorted([store.ids[0], store.ids[2]])  # not: the unknown tool, nor the one no trace rule checked
    engine = ScriptedJudgeForOrchestrationTest(json.dumps({"rationale": "sound steps", "score": 4}))
    report = run_judge(store, RULE, engine, "r2")
    assert (report.eligible, report.judged, report.kept, report.errors) == (2, 2, 2, 0)
    got = store.frame("SELECT * FROM trajectory_verdicts WHERE stage = 'judge' ORDER BY trajectory_id")
    assert got["trajectory_id"].to_list() == due and got["score"].to_list() == [4.0, 4.0]
    assert set(got["config_hash"]) == {config.config_hash} and got["prompt_tokens"].to_list() == [50, 50]
    assert json.loads(got["details"][0])["raw"] == ['{"rationale": "sound steps", "score": 4}']
    again = run_judge(store, RULE, engine, "r3")
    assert again.eligible == 0 and engine.asked == 2  # resumed: nothing judged twice


def test_a_judge_error_is_stored_as_a_failing_verdict(store: Store):
    engine = ScriptedJudgeForOrchestrationTest("not json at all")
    report = run_judge(store, RULE, engine, "r2", max_retries=1)
    assert (report.judged, report.kept, report.errors) == (2, 0, 2) and engine.asked == 4  # one retry each
    got = store.frame("SELECT * FROM trajectory_verdicts WHERE stage = 'judge'").to_dicts()
    assert all(not v["passed"] and v["score"] is None and v["reason"].startswith("judge error: not JSON")
               for v in got)
    assert json.loads(got[0]["details"])["raw"] == ["not json at all"] * 2


def test_the_token_budget_stops_between_batches(store: Store):
    engine = ScriptedJudgeForOrchestrationTest(json.dumps({"rationale": "ok", "score": 3}))
    report = run_judge(store, RULE, engine, "r2", batch_size=1, budget=TokenBudget(10))
    assert (report.judged, report.skipped_budget) == (1, 1)
    assert run_judge(store, RULE, engine, "r3").judged == 1  # a later run judges the rest


@pytest.mark.engine
@pytest.mark.timeout(900)
def test_the_judge_stage_judges_stored_trajectories_on_the_small_engine(vllm_engine, store: Store):
    config = CurateConfig(engine=EngineConfig(model=SMALL_MODEL), judges=JudgeConfig(rules=["step_reasoning"]))
    run = RunState("r2", config)
    run.provide_engine(vllm_engine)
    counts = judge.run(StageContext(store, run)).counts["step_reasoning"]
    assert counts["judged"] == counts["eligible"] == 2 and counts["refused"] is None
    got = store.frame("SELECT * FROM trajectory_verdicts WHERE stage = 'judge' AND rule = 'step_reasoning'").to_dicts()
    assert len(got) == 2 and counts["errors"] == sum(v["score"] is None for v in got)
    for v in got:  # a parsed score on the scale, or a judge error kept as data: never a pass without a score
        details = json.loads(v["details"])
        assert details["raw"] and v["prompt_tokens"] > 0
        if v["score"] is None:
            assert not v["passed"] and v["reason"].startswith("judge error:") and details["error"]
        else:
            assert 1 <= v["score"] <= 5 and v["passed"] == (v["score"] >= RULE.threshold)
    again = judge.run(StageContext(store, run)).counts["step_reasoning"]
    assert again["eligible"] == again["judged"] == 0


@pytest.mark.engine
@pytest.mark.timeout(900)
def test_the_cli_tries_and_backfills_the_rule_on_stored_trajectories(vllm_engine, prefect_server, store: Store,
                                                                     tmp_path: Path):
    import duckdb
    import yaml
    from typer.testing import CliRunner

    from curate.cli import app

    runner = CliRunner()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"engine": {"kind": "vllm", "model": SMALL_MODEL}}))
    db, ids = store.path, store.ids
    store.close()
    tried = runner.invoke(app, ["judges", "test", "step_reasoning", "--sample", ids[0][:10], "--config", str(config),
                                "--db", str(db)], catch_exceptions=False)
    assert tried.exit_code == 0, tried.output
    assert f"{OPEN}step 2" in tried.stdout and "step_reasoning v1: score" in tried.stdout
    args = ["judges", "backfill", "step_reasoning", "--config", str(config), "--db", str(db)]
    first = runner.invoke(app, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "judged 2," in first.output and "FROM trajectory_verdicts" in first.output
    again = runner.invoke(app, args, catch_exceptions=False)
    assert again.exit_code == 0 and "judged 0, kept 0, dropped 0" in again.output
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM trajectory_verdicts WHERE stage = 'judge'").fetchall() == [(2,)]
