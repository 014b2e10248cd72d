"""One rollout as a state machine with no engine inside: the interface the vLLM rollouts drive.

    r = Rollout(task, make(task.environment), model="qwen2.5-coder-1.5b", seed=7,
                response=ResponseChoice.draw(seed))
    while not r.done:
        req = r.request()                          # {"messages": [...], "tools": [...]} for the chat template
        out = engine(req)                          # one completion (text, reasoning, tokens, finish)
        r.advance(out.text, out.reasoning, out.prompt_tokens, out.completion_tokens, out.finish_reason)
    trajectory = r.trajectory()                    # store with pipeline/agentic/store.py

Because a rollout only holds state, an engine loop can keep many in flight and generate for the
others while one runs its tools (advance() runs them; call it from a worker thread): no lockstep
turns. The trajectory id is known at construction (r.trajectory_id), so a resumed stage skips
rollouts already stored.

Each model turn: the thinking is split off (a reasoning field, or a leading <think>...</think>),
calls are parsed from the rest in the model's call syntax (Hermes <tool_call> for Qwen2.5; a
Hermes turn ends at its last call, as a stop sequence there would end it: a small model writes on
and guesses the result it has not seen), each
call runs in the environment (a call of a tool the task does not allow, bad arguments, a tool
error or a timeout come back as error observations), and each observation is rendered in the
drawn response format. A turn without calls ends the rollout (answered); so do the step cap
and a completion cut by max_tokens (unless it holds whole calls: they run).
"""

from __future__ import annotations

import json
import re

from filters.trace.view import final_answer
from pipeline.agentic.envs.base import Environment, Observation
from pipeline.agentic.export import chat_record, for_template
from pipeline.agentic.perturb.call_syntax import cut_after_calls, parse_calls
from pipeline.agentic.perturb.response_format import FlakyEnvironment, ResponseChoice, render_observation
from schemas.agentic import Message, Outcome, Task, ToolCall, Trajectory, trajectory_id_for

_THINK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.S)


class Rollout:
    def __init__(self, task: Task, env: Environment, model: str, seed: int, response: ResponseChoice | None = None,
                 max_steps: int = 8, call_syntax: str = "hermes", system_prompt: str | None = None,
                 recorded: dict | None = None):
        if env.ref() != task.environment:
            raise ValueError(f"task needs {task.environment}, got environment {env.ref()}")
        self.task, self.model, self.seed, self.max_steps, self.call_syntax = task, model, seed, max_steps, call_syntax
        self.base_env = env
        self.env = FlakyEnvironment(env, response.transient_error_at) if response else env
        self.response = response
        self.specs = env.tool_specs(task.tools)
        self.messages: list[Message] = ([Message(role="system", content=system_prompt)] if system_prompt else []) + [
            Message(role="user", content=task.text)]
        # `recorded`: the caller's other choices that shape the trajectory (how the prompt is
        # rendered, say); they are part of its id.
        self.perturbations = (response.record() if response else {}) | (recorded or {}) | {
            "call_syntax": call_syntax, "max_steps": max_steps}
        self.steps = self.prompt_tokens = self.completion_tokens = 0
        self.outcome: Outcome | None = None
        # The last model turn as written, as far as the history keeps it (thinking and calls; the
        # text after the last call dropped): an engine may feed these tokens back as they were
        # generated instead of the re-rendered message (pipeline/agentic/turn_engines.py).
        self.last_turn_text: str | None = None

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def trajectory_id(self) -> str:
        return trajectory_id_for(self.task.task_id, self.base_env.ref(), self.model, self.seed, self.perturbations)

    def request(self, knows_reasoning: bool = False) -> dict:
        """The conversation so far for the engine's chat template, every turn's thinking kept
        (interleaved), calls as the template expects them; `tools` in the OpenAI shape."""
        record = chat_record(self._partial().model_copy(update={"messages": showable(self.messages)}))
        return {"messages": for_template(record, knows_reasoning), "tools": record["tools"]}

    def advance(self, text: str, reasoning: str | None = None, prompt_tokens: int = 0, completion_tokens: int = 0,
                finish_reason: str = "stop") -> bool:
        """Take one model turn, run its calls; True when the rollout is over."""
        if self.done:
            raise RuntimeError("the rollout is over")
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        written = text
        reasoning, text = _split_thinking(text, reasoning)
        # A turn with calls ends at its last call (hermes): what follows was written unseen of the results.
        content, calls = parse_calls(self.call_syntax, text, self.specs, stop_after_calls=True)
        kept = cut_after_calls(self.call_syntax, text, self.specs)
        self.last_turn_text = written[:len(written) - len(text) + len(kept)] if written.endswith(text) else None
        # Cut by max_tokens: the rollout ends, unless the turn wrote whole calls before the cut
        # (a small model rambles on after its call): those run as usual.
        if finish_reason == "length" and (not calls or any(c.arguments is None for c in calls)):
            self.messages.append(Message(role="assistant", content=text or None, reasoning=reasoning))
            self.outcome = Outcome(status="length", detail="the completion hit max_tokens")
            return True
        calls = [c.model_copy(update={"id": f"call_{len(self.messages)}_{i}"}) for i, c in enumerate(calls)]
        self.messages.append(Message(role="assistant", content=content or None, reasoning=reasoning,
                                     tool_calls=calls or None))
        if not calls:
            answer = final_answer(content) or content.strip() or None
            self.outcome = Outcome(status="answered" if answer else "no_answer", final_answer=answer)
            return True
        for call in calls:
            self.messages.append(self._observe(call))
            self.steps += 1
        if self.steps >= self.max_steps:
            self.outcome = Outcome(status="step_cap", detail=f"{self.steps} tool calls, cap {self.max_steps}")
        return self.done

    def out_of_room(self, detail: str) -> None:
        """The conversation no longer fits the model's context: the rollout ends there (length)."""
        self.outcome = Outcome(status="length", detail=detail)

    def fail(self, detail: str) -> None:
        """The engine could not produce a turn (after its retries)."""
        self.outcome = Outcome(status="engine_error", detail=detail)

    def trajectory(self) -> Trajectory:
        if not self.done:
            raise RuntimeError("the rollout is not over")
        return self._partial().model_copy(update={"outcome": self.outcome})

    def _partial(self) -> Trajectory:
        return Trajectory(task=self.task, environment=self.base_env.ref(), seed=self.seed, model=self.model,
                          perturbations=self.perturbations, tools=self.specs, messages=list(self.messages),
                          outcome=self.outcome or Outcome(status="no_answer", detail="in progress"), steps=self.steps,
                          prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
                          final_state_hash=self.base_env.state_hash())

    def _observe(self, call: ToolCall) -> Message:
        if call.arguments is None or call.name is None:
            obs = Observation("error", error=f"could not parse the tool call: {call.parse_error}")
        elif call.name not in {s.name for s in self.specs}:
            obs = Observation("error", error=f"unknown tool {call.name!r}; tools: {[s.name for s in self.specs]}")
        else:
            obs = self.env.call(call.name, call.arguments)
        text = (render_observation(obs.as_dict(), self.response, self.steps) if self.response
                else json.dumps(obs.as_dict(), ensure_ascii=False))
        return Message(role="tool", tool_call_id=call.id, name=call.name, content=text, tool_status=obs.status)


def showable(messages: list[Message]) -> list[Message]:
    """An unparsable call goes back to the model as the text it wrote, and its error as a user
    turn (a tool turn must answer a call the request shows)."""
    bad_ids, out = set(), []
    for m in messages:
        bad = [c for c in m.tool_calls or [] if c.arguments is None or c.name is None]
        if bad:
            bad_ids.update(c.id for c in bad)
            good = [c for c in m.tool_calls if c not in bad]
            raw = "\n".join(c.raw or "" for c in bad)
            content = "\n".join(p for p in (m.content, raw) if p)
            m = m.model_copy(update={"content": content, "tool_calls": good or None})
        elif m.role == "tool" and m.tool_call_id in bad_ids:
            m = Message(role="user", content=f"Tool call error: {m.content}")
        out.append(m)
    return out


def _split_thinking(text: str, reasoning: str | None) -> tuple[str | None, str]:
    if reasoning is not None:
        return reasoning.strip() or None, text
    match = _THINK.match(text)
    if match:
        return match.group(1).strip() or None, text[match.end():]
    if text.lstrip().startswith("<think>"):  # opened, never closed
        return text.lstrip()[len("<think>"):].strip() or None, ""
    return None, text
