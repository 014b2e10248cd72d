"""Engines that take one turn request at a time and hand back turns as they finish: what the
rollout driver (pipeline/agentic/driver.py) needs to keep many rollouts in flight.

    engine.submit(TurnRequest(key, messages, tools, prefill, sampling))
    for result in engine.poll():        # some progress; the turns that finished
        ...

VllmTurnEngine drives the in-process vLLM engine step by step (LLMEngine.add_request / step(),
what LLM.generate does inside, continuous batching): a request joins the running batch at the
next step, so a rollout back from its tools does not wait for the others' turns to end.
HttpTurnEngine sends each turn to an OpenAI-compatible server from a thread pool (the server
batches what is in flight).
"""

from __future__ import annotations

import concurrent.futures as cf
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

    def renders_tools(self) -> bool:
        from pipeline.agentic.prompting import template_renders_tools

        return template_renders_tools(self.tokenizer)

    def knows_reasoning(self) -> bool:
        return "reasoning_content" in (self.tokenizer.chat_template or "")

    def prompt_ids(self, request: TurnRequest) -> list[int]:
        text = self.tokenizer.apply_chat_template(request.messages, tools=request.tools, tokenize=False,
                                                  add_generation_prompt=True) + (request.prefill or "")
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

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
                                   len(c.token_ids), cached_tokens=out.num_cached_tokens or 0))
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
