"""Engines that take one turn request at a time and hand back turns as they finish: what the
rollout driver (pipeline/agentic/driver.py) needs to keep many rollouts in flight.

    engine.submit(TurnRequest(key, messages, tools, prefill, sampling))
    for result in engine.poll():        # some progress; the turns that finished
        ...

VllmTurnEngine drives the in-process vLLM engine step by step (LLMEngine.add_request / step(),
what LLM.generate does inside, continuous batching): a request joins the running batch at the
next step, so a rollout back from its tools does not wait for the others' turns to end.
A later turn carries the previous one (`previous`: its prompt ids and the text kept): the
in-process engine sends those tokens back as they were (token-in, token-out) so the prefix cache
holds them. HttpTurnEngine sends each turn to an OpenAI-compatible server from a thread pool (the
server batches what is in flight, and renders the messages itself: `previous` is not used).
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import os
from dataclasses import dataclass

from pipeline.engines.base import Sampling


@dataclass(frozen=True)
class TurnRequest:
    key: str
    messages: list[dict]
    tools: list[dict] | None      # the OpenAI `tools` field; None: the tools are in the system prompt
    prefill: str | None           # text the assistant turn starts with ("<think>\n")
    sampling: Sampling
    # The previous turn as the engine saw it: its prompt token ids (prefill included) and the text
    # it generated that the history keeps. An engine that can (VllmTurnEngine) sends those tokens
    # back as they were instead of re-rendering the last assistant message (see prompt_ids).
    previous: tuple[list[int], str] | None = None


@dataclass
class TurnResult:
    key: str
    text: str                     # the generated text, the prefill not included
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning: str | None = None  # a server's separate reasoning field
    error: str | None = None
    cached_tokens: int = 0        # prompt tokens read from the engine's prefix cache (not prefilled again)
    prompt_ids: list[int] | None = None  # the prompt as sent (an in-process engine): the next turn's `previous`


class VllmTurnEngine:
    """Turns on an in-process vLLM engine (pipeline/engines/vllm_local.VllmEngine), one step() per poll."""

    def __init__(self, vllm_engine, min_new_tokens: int = 16):
        llm = vllm_engine._llm
        self.model_name = vllm_engine.model_name
        self._engine = llm.llm_engine
        self.tokenizer = llm.get_tokenizer()
        self.max_model_len = llm.llm_engine.model_config.max_model_len
        self.min_new_tokens = min_new_tokens
        self._keys: set[str] = set()          # our keys in the engine (outputs carry them as request_id)
        self._ready: list[TurnResult] = []    # refused at submit (context full)
        self.continued_turns = 0              # later turns sent as the previous tokens + what followed
        self.rerendered_turns = 0             # later turns whose history had to be re-rendered

    def renders_tools(self) -> bool:
        from pipeline.agentic.prompting import template_renders_tools

        return template_renders_tools(self.tokenizer)

    def knows_reasoning(self) -> bool:
        return "reasoning_content" in (self.tokenizer.chat_template or "")

    def prompt_ids(self, request: TurnRequest) -> list[int]:
        """The turn's prompt: the chat template's rendering, or, for a later turn with `previous`,
        the previous prompt's tokens + the previous turn's kept text + the rendering of what came
        after it (end of turn, tool results, the new turn's start). The model's own turn comes back
        as it wrote it, not re-rendered (whitespace, an untagged call the template writes in tags),
        so the prefix cache holds all of it: on 2 CPU cores 27 prefilled tokens cost as much as a
        batch-12 decode step (README, rollout throughput)."""
        text = self._render(request.messages, request.tools, True) + (request.prefill or "")
        if request.previous is not None:
            ids = self._continued(request, text)
            if ids is not None:
                self.continued_turns += 1
                return ids
            self.rerendered_turns += 1
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _render(self, messages: list[dict], tools: list[dict] | None, generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                                  add_generation_prompt=generation_prompt)

    def _continued(self, request: TurnRequest, text: str) -> list[int] | None:
        """previous prompt + previous kept text + the template's text after the last assistant
        message; None when the template does not render the history as a prefix of the whole."""
        previous_ids, kept = request.previous
        last = max((i for i, m in enumerate(request.messages) if m["role"] == "assistant"), default=None)
        end = self._end_of_turn()
        if last is None or end is None:
            return None
        head = self._render(request.messages[:last + 1], request.tools, False)
        if not text.startswith(head) or not head.endswith(end):
            return None
        encode = self.tokenizer.encode
        return previous_ids + encode(kept, add_special_tokens=False) + encode(text[len(head) - len(end):],
                                                                               add_special_tokens=False)

    @functools.cache  # noqa: B019 - one engine per run: the template's answer, asked once
    def _end_of_turn(self) -> str | None:
        """What the template writes after an assistant message's content ("<|im_end|>\n" in ChatML)."""
        mark = "zz_end_probe_5c1e"
        try:
            text = self._render([{"role": "user", "content": "hi"}, {"role": "assistant", "content": mark}], None, False)
        except Exception:  # noqa: BLE001 - a template that cannot say it: turns are re-rendered
            return None
        return text[text.rindex(mark) + len(mark):] or None

    def submit(self, request: TurnRequest) -> None:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        ids = self.prompt_ids(request)
        room = self.max_model_len - len(ids)
        if room < self.min_new_tokens:
            self._ready.append(TurnResult(request.key, "", "length", len(ids), 0,
                                          error=f"context full: the prompt is {len(ids)} of {self.max_model_len} "
                                                "tokens"))
            return
        s = request.sampling
        params = SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=min(s.max_tokens, room),
                                seed=s.seed, stop=list(s.stop) or None, output_kind=RequestOutputKind.FINAL_ONLY)
        self._engine.add_request(request.key, {"prompt_token_ids": ids}, params)
        self._keys.add(request.key)

    def in_flight(self) -> int:
        return len(self._keys) + len(self._ready)

    def poll(self) -> list[TurnResult]:
        done, self._ready = self._ready, []
        if not self._keys:
            return done
        for out in self._engine.step():
            if not out.finished:
                continue
            self._keys.remove(out.request_id)
            c = out.outputs[0]
            done.append(TurnResult(out.request_id, c.text, c.finish_reason or "stop", len(out.prompt_token_ids or []),
                                   len(c.token_ids), cached_tokens=out.num_cached_tokens or 0,
                                   prompt_ids=list(out.prompt_token_ids or []) or None))
        return done


class HttpTurnEngine:
    """Turns on an OpenAI-compatible server, `max_concurrency` in flight (threads: the server batches)."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, max_concurrency: int = 16,
                 timeout_s: float = 120.0, max_retries: int = 4, renders_tools: bool = True,
                 knows_reasoning: bool = False):
        from openai import OpenAI

        self.model_name = model
        self._client = OpenAI(base_url=base_url, api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
                              timeout=timeout_s, max_retries=max_retries)
        self._pool = cf.ThreadPoolExecutor(max_concurrency, thread_name_prefix="turn-http")
        self._futures: set[cf.Future] = set()
        self._renders_tools, self._knows_reasoning = renders_tools, knows_reasoning

    def renders_tools(self) -> bool:
        return self._renders_tools

    def knows_reasoning(self) -> bool:
        return self._knows_reasoning

    def submit(self, request: TurnRequest) -> None:
        self._futures.add(self._pool.submit(self._one, request))

    def in_flight(self) -> int:
        return len(self._futures)

    def poll(self, timeout_s: float = 0.05) -> list[TurnResult]:
        if not self._futures:
            return []
        done, self._futures = cf.wait(self._futures, timeout=timeout_s, return_when=cf.FIRST_COMPLETED)
        return [f.result() for f in done]

    def _one(self, request: TurnRequest) -> TurnResult:
        s = request.sampling
        messages = list(request.messages)
        extra: dict = {}
        if request.prefill:
            messages.append({"role": "assistant", "content": request.prefill})
            extra = {"continue_final_message": True, "add_generation_prompt": False}
        body = dict(model=self.model_name, messages=messages, temperature=s.temperature, top_p=s.top_p,
                    max_tokens=s.max_tokens, seed=s.seed, stop=list(s.stop) or None)
        if request.tools:
            # The template renders the tools; the calls stay in the text (our parser reads them), so
            # the server needs no tool parser.
            body.update(tools=request.tools, tool_choice="none")
        try:
            resp = self._client.chat.completions.create(**body, extra_body=extra or None)
        except Exception as exc:  # noqa: BLE001 - after the client's retries: this turn's error
            return TurnResult(request.key, "", "error", error=f"{type(exc).__name__}: {exc}"[:300])
        choice, usage = resp.choices[0], resp.usage
        message = choice.message
        return TurnResult(request.key, message.content or "", choice.finish_reason or "stop",
                          usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0,
                          getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
