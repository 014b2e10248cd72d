"""The rollout driver's orchestration, on a fake turn engine (named as such: it tests the loop, not
a model) and the real shop_db environment: while one rollout's tool call is blocked, the engine
keeps producing turns for the others (no lockstep), and each turn's seed is the rollout's own."""

from __future__ import annotations

import json
import threading
import time

from pipeline.agentic.driver import RolloutJob, drive
from pipeline.agentic.envs.shop_db import ShopDb
from pipeline.agentic.prompting import PromptPlan
from pipeline.agentic.rollout import Rollout
from pipeline.agentic.tasks.db_questions import generate
from pipeline.agentic.turn_engines import TurnRequest, TurnResult
from pipeline.engines.base import Sampling


class FakeTurnEngine:
    """Answers one request per poll: first a list_tables call, then a final answer."""

    def __init__(self):
        self.queue: list[TurnRequest] = []
        self.seeds: dict[str, int] = {}
        self.polls = 0

    def submit(self, request: TurnRequest) -> None:
        self.queue.append(request)
        self.seeds[request.key] = request.sampling.seed

    def in_flight(self) -> int:
        return len(self.queue)

    def poll(self) -> list[TurnResult]:
        self.polls += 1
        request = self.queue.pop(0)
        first_turn = request.key.endswith(":0")
        text = ('I list the tables.</think>\n<tool_call>{"name": "list_tables", "arguments": {}}</tool_call>'
                if first_turn else "I saw the tables.</think>\nFinal answer: 3")
        return [TurnResult(request.key, text, "stop", 10, 5)]


class BlockedShopDb(ShopDb):
    """shop_db whose calls wait for `release` (at most `limit_s`)."""

    def __init__(self, release: threading.Event, limit_s: float = 20):
        super().__init__()
        self.release, self.limit_s, self.released = release, limit_s, None

    def call(self, tool, arguments):
        self.released = self.release.wait(self.limit_s)
        return super().call(tool, arguments)


def _job(task, env, seed: int) -> RolloutJob:
    plan = PromptPlan("system_prompt", PromptPlan.draw(seed, env.tool_specs(task.tools), "system_prompt",
                                                        ["hermes"]).render)
    return RolloutJob(Rollout(task, env, model="fake", seed=seed, call_syntax="hermes", recorded=plan.record()), plan)


def _drive_with_one_call_held(n: int, **drive_args):
    """n rollouts on the fake engine; rollout 0's tool call is held until all the others finished
    (or BlockedShopDb's time limit). Returns (jobs, the held environment, finish order, stats)."""
    tasks = generate(seed=3, n=n)
    blocked = BlockedShopDb(threading.Event())
    jobs = [_job(tasks[0], blocked, 0)] + [_job(t, ShopDb(), i) for i, t in enumerate(tasks[1:], start=1)]
    finished: list[int] = []

    def on_done(r: Rollout) -> None:
        finished.append(r.seed)
        if set(finished) >= set(range(1, n)):
            blocked.release.set()  # only now may the held call return

    stats = drive(jobs, FakeTurnEngine(), Sampling(max_tokens=32), on_done=on_done, **drive_args)
    return jobs, blocked, finished, stats


def test_other_rollouts_finish_while_one_tool_call_is_blocked():
    jobs, blocked, finished, stats = _drive_with_one_call_held(4, max_in_flight=4, tool_workers=2)
    assert blocked.released is True  # released by the others finishing, not by the time limit
    assert finished[-1] == 0 and sorted(finished[:3]) == [1, 2, 3]
    assert stats.polls_while_tools_ran >= 4  # the others' turns were generated during the blocked call
    assert stats.rollouts == 4 and stats.turns == 8 and stats.completion_tokens == 40
    for job in jobs:
        traj = job.rollout.trajectory()
        assert traj.outcome.status == "answered" and traj.outcome.final_answer == "3"
        assert [m.role for m in traj.messages] == ["user", "assistant", "tool", "assistant"]
        assert traj.messages[1].reasoning == "I list the tables."  # the prefill's <think> was put back
        assert traj.messages[2].tool_status == "ok" and "customers" in json.loads(traj.messages[2].content)["result"]


def test_a_rollout_in_its_tools_leaves_its_engine_slot_to_another():
    # One slot in the engine: while rollout 0's call is held, the others still get turns.
    _, blocked, finished, stats = _drive_with_one_call_held(3, max_in_flight=1, tool_workers=2)
    assert blocked.released is True and finished[-1] == 0 and sorted(finished[:2]) == [1, 2]
    assert stats.rollouts == 3 and stats.max_in_flight <= 1 + 2


def test_turn_seeds_depend_on_the_rollout_not_the_batch():
    tasks = generate(seed=3, n=3)
    alone, together = FakeTurnEngine(), FakeTurnEngine()
    drive([_job(tasks[0], ShopDb(), 7)], alone, Sampling())
    drive([_job(t, ShopDb(), 7 + i) for i, t in enumerate(tasks)], together, Sampling())
    assert alone.seeds.items() <= together.seeds.items()
    assert len(set(together.seeds.values())) == len(together.seeds)


def test_a_refused_turn_ends_only_its_rollout():
    tasks = generate(seed=3, n=2)

    class RefusingFakeEngine(FakeTurnEngine):
        def submit(self, request):
            if request.key.startswith(refused):
                raise ValueError("prompt too long")
            super().submit(request)

    jobs = [_job(t, ShopDb(), i) for i, t in enumerate(tasks)]
    refused = jobs[0].rollout.trajectory_id
    stats = drive(jobs, RefusingFakeEngine(), Sampling())
    assert jobs[0].rollout.outcome.status == "engine_error" and "prompt too long" in jobs[0].rollout.outcome.detail
    assert jobs[1].rollout.outcome.status == "answered" and stats.rollouts == 2


def test_a_full_context_ends_its_rollout_as_length():
    class FullContextFakeEngine(FakeTurnEngine):
        def poll(self):
            request = self.queue.pop(0)
            return [TurnResult(request.key, "", "length", 4000, 0, error="context full: the prompt is 4000 tokens")]

    job = _job(generate(seed=3, n=1)[0], ShopDb(), 1)
    drive([job], FullContextFakeEngine(), Sampling())
    outcome = job.rollout.trajectory().outcome
    assert outcome.status == "length" and outcome.detail.startswith("context full")
    assert job.rollout.prompt_tokens == 4000


def test_the_stats_split_the_wall_time_into_engine_steps_and_sending():
    class SlowFakeEngine(FakeTurnEngine):
        def poll(self):
            time.sleep(0.01)
            return super().poll()

    tasks = generate(seed=3, n=3)
    jobs = [_job(t, ShopDb(), i) for i, t in enumerate(tasks)]
    stats = drive(jobs, SlowFakeEngine(), Sampling(), max_in_flight=3)
    assert stats.engine_polls == 6 and stats.engine_seconds >= 0.06
    assert stats.engine_seconds + stats.submit_seconds <= stats.wall_seconds
    # Polls after a send: the first (three first turns sent) and those after a rollout came back
    # from its tools; never more than the polls, never fewer than one.
    assert 1 <= stats.admitting_polls <= stats.engine_polls
    assert stats.admitting_seconds <= stats.engine_seconds
    assert set(stats.as_counts()) >= {"engine_seconds", "submit_seconds", "admitting_polls"}
