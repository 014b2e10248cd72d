"""Many rollouts in flight on one engine: while one trajectory's tools run (in worker threads),
the engine keeps generating for the others. No lockstep turns.

    stats = drive(jobs, engine, sampling, on_done=store_it)   # jobs: RolloutJob(rollout, plan)

The loop, on the caller's thread:
  1. admit rollouts until `max_in_flight` are in the engine (and at most `tool_workers` more are
     open); each open rollout is in exactly one place: the engine (a turn being generated) or the
     tool pool (advance(): parse, run the calls);
  2. rollouts whose tools are done go back to the engine at once (or finish: on_done);
  3. one engine poll (one vLLM step): finished turns go to the tool pool;
  4. when nothing is in the engine, wait for the first tool to finish.
on_done runs on the caller's thread (store writes, verification that needs the main thread).

Each turn's sampling seed is derived from the rollout's seed and the turn number, so a
trajectory is reproducible whatever else was in the batch.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from pipeline.agentic.prompting import PromptPlan, turn_messages
from pipeline.agentic.rollout import Rollout
from pipeline.agentic.turn_engines import TurnRequest, TurnResult
from pipeline.engines.base import Sampling
from pipeline.hashing import seed_from

log = logging.getLogger(__name__)
THINK_PREFILL = "<think>\n"


@dataclass
class RolloutJob:
    rollout: Rollout
    plan: PromptPlan
    first_prefill: str | None = None  # the first turn starts with it instead of think_prefill (a written call)
    turns: int = 0
    sent_prefill: str | None = None  # the prefill of the turn in the engine
    prompt_ids: list[int] | None = None  # the last turn's prompt as the engine sent it (in-process engines)


@dataclass
class DriveStats:
    rollouts: int = 0
    turns: int = 0
    completion_tokens: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0    # of prompt_tokens, read from the prefix cache (the rest was prefilled)
    engine_polls: int = 0
    polls_while_tools_ran: int = 0   # engine steps taken while some rollout's tools were running
    tool_seconds: float = 0.0        # summed over rollouts (advance(): parsing and tool calls)
    engine_seconds: float = 0.0      # in engine.poll() (the engine's steps), on the caller's thread
    submit_seconds: float = 0.0      # in send(): rendering and tokenizing turns, on the caller's thread
    admitting_polls: int = 0         # polls right after a turn was sent: their step prefills it
    admitting_seconds: float = 0.0
    wall_seconds: float = 0.0
    max_in_flight: int = 0
    turns_as_generated: int = 0      # later turns the engine sent as the previous prompt + the text written
    errors: list[str] = field(default_factory=list)

    def as_counts(self) -> dict:
        return {"rollouts": self.rollouts, "turns": self.turns, "completion_tokens": self.completion_tokens,
                "prompt_tokens": self.prompt_tokens, "cached_prompt_tokens": self.cached_prompt_tokens,
                "engine_polls": self.engine_polls,
                "polls_while_tools_ran": self.polls_while_tools_ran, "tool_seconds": round(self.tool_seconds, 2),
                "turns_as_generated": self.turns_as_generated, "engine_seconds": round(self.engine_seconds, 2),
                "submit_seconds": round(self.submit_seconds, 2),
                "admitting_polls": self.admitting_polls, "admitting_seconds": round(self.admitting_seconds, 2),
                "wall_seconds": round(self.wall_seconds, 2),
                "output_tok_per_s": round(self.completion_tokens / self.wall_seconds, 1) if self.wall_seconds else 0}


def drive(jobs: Iterable[RolloutJob], engine, sampling: Sampling, *, max_in_flight: int = 32, tool_workers: int = 4,
          think_prefill: str | None = THINK_PREFILL, on_done: Callable[[Rollout], None] | None = None,
          knows_reasoning: bool = False) -> DriveStats:
    """Run every job's rollout to its end on `engine` (a turn engine: submit / poll / in_flight)."""
    waiting = deque(jobs)
    in_engine: dict[str, RolloutJob] = {}
    in_tools: dict[cf.Future, RolloutJob] = {}
    stats = DriveStats()
    started = time.perf_counter()
    sent_since_poll = False
    continued_before = getattr(engine, "continued_turns", 0)

    def finish(job: RolloutJob) -> None:
        stats.rollouts += 1
        if on_done:
            on_done(job.rollout)

    def prefill_of(job: RolloutJob) -> str | None:
        return job.first_prefill if job.first_prefill is not None and job.turns == 0 else think_prefill

    def previous_of(job: RolloutJob) -> tuple[list[int], str] | None:
        """The last turn's prompt ids and the text it generated that the history keeps (the
        prefill is in the prompt), for an engine that feeds them back as they were."""
        written, prefill = job.rollout.last_turn_text, job.sent_prefill or ""
        if job.turns == 0 or job.prompt_ids is None or written is None or not written.startswith(prefill):
            return None
        return job.prompt_ids, written[len(prefill):]

    def send(job: RolloutJob) -> None:
        nonlocal sent_since_poll
        t0 = time.perf_counter()
        try:
            _send(job)
        finally:
            stats.submit_seconds += time.perf_counter() - t0
            sent_since_poll = True

    def _send(job: RolloutJob) -> None:
        r = job.rollout
        messages, tools = turn_messages(r, job.plan, knows_reasoning)
        key = f"{r.trajectory_id}:{job.turns}"
        turn_sampling = replace(sampling, seed=seed_from(r.seed, job.turns, "turn"))
        try:
            previous = previous_of(job)
            job.sent_prefill = prefill_of(job)
            engine.submit(TurnRequest(key, messages, tools, job.sent_prefill, turn_sampling, previous))
        except Exception as exc:  # noqa: BLE001 - a request the engine refuses ends this rollout only
            log.exception("engine refused a turn of %s", r.trajectory_id)
            r.fail(f"engine refused the turn: {type(exc).__name__}: {exc}"[:300])
            finish(job)
            return
        in_engine[key] = job

    def take_turn(job: RolloutJob, result: TurnResult) -> float:
        t0 = time.perf_counter()
        r, prefill = job.rollout, job.sent_prefill or ""
        if result.error and not result.text:
            if result.finish_reason == "length":  # the context is full: the rollout ran out of room
                r.prompt_tokens += result.prompt_tokens
                r.out_of_room(result.error)
            else:
                r.fail(result.error)
        else:
            text = prefill + result.text if result.reasoning is None else result.text
            r.advance(text, result.reasoning, result.prompt_tokens, result.completion_tokens, result.finish_reason)
        return time.perf_counter() - t0

    with cf.ThreadPoolExecutor(tool_workers, thread_name_prefix="rollout-tools") as pool:
        while waiting or in_engine or in_tools:
            # The engine's batch is what max_in_flight caps: a rollout in its tools leaves its slot to
            # another (at most tool_workers more open), so the batch stays as wide while tools run.
            while waiting and len(in_engine) < max_in_flight and len(in_engine) + len(in_tools) < max_in_flight + tool_workers:
                send(waiting.popleft())
            stats.max_in_flight = max(stats.max_in_flight, len(in_engine) + len(in_tools))
            for future in [f for f in in_tools if f.done()]:
                job = in_tools.pop(future)
                try:
                    stats.tool_seconds += future.result()
                except Exception as exc:  # noqa: BLE001 - a bug in one rollout must not stop the others
                    log.exception("rollout %s failed in advance()", job.rollout.trajectory_id)
                    stats.errors.append(f"{job.rollout.trajectory_id}: {type(exc).__name__}: {exc}")
                    if not job.rollout.done:
                        job.rollout.fail(f"rollout error: {type(exc).__name__}: {exc}"[:300])
                if job.rollout.done:
                    finish(job)
                else:
                    send(job)
            if engine.in_flight():
                tools_running = any(not f.done() for f in in_tools)
                t0 = time.perf_counter()
                results = engine.poll()
                seconds = time.perf_counter() - t0
                stats.engine_seconds += seconds
                if sent_since_poll:
                    stats.admitting_polls += 1
                    stats.admitting_seconds += seconds
                    sent_since_poll = False
                stats.engine_polls += 1
                stats.polls_while_tools_ran += tools_running
                for result in results:
                    job = in_engine.pop(result.key)
                    job.turns += 1
                    job.prompt_ids = result.prompt_ids
                    stats.turns += 1
                    stats.completion_tokens += result.completion_tokens
                    stats.prompt_tokens += result.prompt_tokens
                    stats.cached_prompt_tokens += result.cached_tokens
                    in_tools[pool.submit(take_turn, job, result)] = job
            elif in_tools:
                cf.wait(list(in_tools), return_when=cf.FIRST_COMPLETED)
    stats.wall_seconds = time.perf_counter() - started
    stats.turns_as_generated = getattr(engine, "continued_turns", 0) - continued_before
    return stats
