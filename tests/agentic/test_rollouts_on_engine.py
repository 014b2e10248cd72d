"""Rollouts on the real small engine (SmolLM2-135M, in-process vLLM) in each environment: stored
with their messages and verdicts, tools run, and a second run makes no engine calls.

SmolLM2-135M rarely writes a well-formed call by itself, so one rollout per environment starts
its turn with a written call (the prefill; the model continues after it), which makes the tool
path run on the real engine; the other rollout per environment is the model's own. Turns are
short (at most 32 tokens, and a turn stops at the end of a line or sentence: a turn cut by
max_tokens would end its rollout before its call runs) to keep the test short on two shared cores."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.agentic.driver import THINK_PREFILL, RolloutJob
from pipeline.agentic.prompting import PromptPlan
from pipeline.agentic.runner import plan_jobs, run_and_store, trace_rule_pass
from pipeline.agentic.store import read_trajectories
from pipeline.agentic.tasks.db_questions import generate
from pipeline.agentic.tasks.pool_tasks import code_task, math_task
from pipeline.agentic.turn_engines import VllmTurnEngine
from pipeline.store import Store
from schemas.config import AgenticConfig

pytestmark = pytest.mark.engine

FORCED = {
    "shop_db@1": '{"name": "query", "arguments": {"sql": "SELECT count(*) FROM customers"}}',
    "calculator@1": '{"name": "evaluate", "arguments": {"expression": "48 + 48/2"}}',
    "python_exec@1": '{"name": "run_python", "arguments": {"code": "print(sum(range(10)))"}}',
}


def _tasks():
    return [generate(seed=5, n=1)[0],
            math_task("q-math", "Natalia sold clips to 48 friends in April and half as many in May. How many in all?",
                      "72"),
            code_task("q-code", "Write a function add(a, b) that returns a + b.", ["assert add(2, 3) == 5"])]


def _forced(job: RolloutJob) -> RolloutJob:
    call = FORCED[job.rollout.task.environment]
    job.first_prefill = f"{THINK_PREFILL}I will use the tool first.\n</think>\n<tool_call>\n{call}\n</tool_call>\n"
    return job


def test_rollouts_run_tools_store_and_resume(vllm_engine, tmp_path: Path):
    cfg = AgenticConfig(enabled=True, rollouts_per_task=2, max_steps=1, max_tokens=32, transient_error_rate=0.0,
                        store_every=2, stop=["<tool_response>", "\n", ".", "<"])
    turn_engine = VllmTurnEngine(vllm_engine)
    mode = "chat_template" if turn_engine.renders_tools() else "system_prompt"
    jobs = plan_jobs(_tasks(), vllm_engine.model_name, cfg, mode)
    assert all(isinstance(j.plan, PromptPlan) for j in jobs) and len(jobs) == 6
    forced = {j.rollout.trajectory_id for j in (_forced(j) for j in jobs[::2])}
    made = []

    def factory():
        made.append(1)
        return turn_engine

    with Store(tmp_path / "r.duckdb") as store:
        counts, stats = run_and_store(store, jobs, factory, cfg, run_id="r1")
        assert counts == {"planned": 6, "already_stored": 0, "new": 6} and made == [1]
        assert stats.turns >= 6 and stats.completion_tokens > 0
        trajectories = {t.trajectory_id: t for t in read_trajectories(store)}
        assert sorted(t.environment for t in trajectories.values()) == sorted(
            ["shop_db@1", "calculator@1", "python_exec@1"] * 2)
        for tid in forced:  # the written call ran in the real environment and its result came back
            t = trajectories[tid]
            tool_turns = [m for m in t.messages if m.role == "tool"]
            assert t.steps >= 1 and t.outcome.status == "step_cap" and tool_turns[0].tool_status == "ok", t.messages
            assert {"shop_db@1": "count(*)", "calculator@1": "72", "python_exec@1": "45"}[t.environment] in \
                tool_turns[0].content
            assert t.messages[2].reasoning == "I will use the tool first."
        for t in trajectories.values():
            assert t.model == "smollm2-135m-instruct" and t.completion_tokens > 0
            assert t.perturbations["prompt_mode"] == mode and t.perturbations["call_syntax"] == "hermes"
        outcome_rows = store.scalar("SELECT count(*) FROM trajectory_verdicts WHERE rule = 'outcome'")
        assert outcome_rows == sum(t.outcome.correct is not None for t in trajectories.values())

        rules = trace_rule_pass(store, list(trajectories), run_id="r1")
        assert all(r["checked"] == 6 for r in rules.values()) and len(rules) == 9
        # Resume: everything is stored, so the engine is never made and no rule runs again.
        again = plan_jobs(_tasks(), vllm_engine.model_name, cfg, mode)
        counts, stats = run_and_store(store, again, factory, cfg, run_id="r2")
        assert counts == {"planned": 6, "already_stored": 6, "new": 0} and stats is None and made == [1]
        assert all(r["checked"] == 0 for r in trace_rule_pass(store, list(trajectories), run_id="r2").values())


def test_a_repeated_prompt_is_read_from_the_prefix_cache_and_counted(vllm_engine):
    """A later turn repeats its rollout's history: the tokens vLLM reads from its prefix cache are
    counted apart (cached_tokens), which is how the throughput bench tells prefill from decode."""
    from pipeline.agentic.turn_engines import TurnRequest
    from pipeline.engines.base import Sampling

    engine = VllmTurnEngine(vllm_engine)
    history = [{"role": "system", "content": "You keep a shop's ledger. " * 80},
               {"role": "user", "content": "How many customers live in Osaka?"}]

    def turn(key: str):
        engine.submit(TurnRequest(key, history, None, None, Sampling(temperature=0.0, max_tokens=4)))
        done = []
        while not done:
            done = engine.poll()
        return done[0]

    first, again = turn("cache-probe:0"), turn("cache-probe:1")
    assert first.prompt_tokens == again.prompt_tokens > 256
    assert again.cached_tokens >= 256 > first.cached_tokens  # whole KV blocks of the repeated prompt


def test_a_later_turn_sends_the_previous_turn_back_as_generated_and_reads_it_from_the_cache(vllm_engine):
    """A later turn's prompt is the previous prompt's tokens + the text the model wrote + what the
    template puts after it (end of turn, the tool result, the new turn's start): the model's turn
    is not re-rendered, so vLLM's prefix cache holds every whole block of it."""
    from pipeline.agentic.turn_engines import TurnRequest
    from pipeline.engines.base import Sampling

    engine = VllmTurnEngine(vllm_engine)
    history = [{"role": "system", "content": "You keep a shop's ledger and think before you answer. " * 30},
               {"role": "user", "content": "How many customers live in Osaka?"}]

    def turn(request: TurnRequest):
        engine.submit(request)
        done = []
        while not done:
            done = engine.poll()
        return done[0]

    sampling = Sampling(temperature=0.0, max_tokens=24)
    first = turn(TurnRequest("splice:0", history, None, "<think>\n", sampling))
    assert first.prompt_ids and first.completion_tokens > 0
    # As a rollout stores the turn: the thinking re-rendered in tags, stripped; then a tool result.
    later = history + [{"role": "assistant", "content": f"<think>\n{first.text.strip()}\n</think>\n\nFinal"},
                       {"role": "user", "content": "Tool result: 12 customers."}]
    request = TurnRequest("splice:1", later, None, "<think>\n", sampling, previous=(first.prompt_ids, first.text))
    ids = engine.prompt_ids(request)
    generated = vllm_engine._llm.get_tokenizer().encode(first.text, add_special_tokens=False)
    assert ids[:len(first.prompt_ids) + len(generated)] == first.prompt_ids + generated
    assert engine.tokenizer.decode(ids).endswith(
        "Tool result: 12 customers.<|im_end|>\n<|im_start|>assistant\n<think>\n")
    assert engine.continued_turns == 1 and engine.rerendered_turns == 0
    second = turn(request)
    block = vllm_engine._llm.llm_engine.vllm_config.cache_config.block_size
    assert second.cached_tokens >= (len(first.prompt_ids) + len(generated) - 1) // block * block
    # Without `previous` the same messages are re-rendered (the thinking stripped, "Final" added).
    assert engine.prompt_ids(TurnRequest("splice:x", later, None, "<think>\n", sampling)) != ids
