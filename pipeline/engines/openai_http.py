"""Any OpenAI-compatible chat server (vLLM, SGLang, TGI, hosted APIs) over async HTTP.

Concurrency is bounded by a semaphore; timeouts and retries with exponential backoff and
jitter are the OpenAI SDK's own (it retries connection errors, 408, 409, 429 and 5xx).
`n` samples are sent as n requests with seeds seed+i so every sample has exact token counts.
"""

from __future__ import annotations

import asyncio
import os

from pipeline.engines.base import ChatRequest, ChatResult, Completion, Engine, ProgressFn


class OpenAIEngine(Engine):
    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, max_concurrency: int = 16,
                 timeout_s: float = 120.0, max_retries: int = 4, supports_prefill: bool = True):
        self.base_url = base_url
        self.model_name = model
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.supports_prefill = supports_prefill

    def _body(self, request: ChatRequest, seed: int | None) -> dict:
        s = request.sampling
        messages = list(request.messages)
        extra: dict = {}
        if request.prefill is not None:
            if not self.supports_prefill:
                raise ValueError("this server does not continue a prefilled assistant turn; use think_mode: native")
            messages.append({"role": "assistant", "content": request.prefill})
            # vLLM's extension to continue the last assistant message instead of opening a new one.
            extra = {"continue_final_message": True, "add_generation_prompt": False}
        body = dict(model=self.model_name, messages=messages, n=1, temperature=s.temperature,
                    top_p=s.top_p, max_tokens=s.max_tokens, seed=seed, stop=list(s.stop) or None)
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.json_schema, "strict": True},
            }
        if extra:
            body["extra_body"] = extra
        return body

    async def _one(self, client, sem, request: ChatRequest, on_progress) -> ChatResult:
        s = request.sampling
        result = ChatResult()
        try:
            for i in range(s.n):
                seed = None if s.seed is None else s.seed + i
                async with sem:
                    resp = await client.chat.completions.create(**self._body(request, seed))
                choice = resp.choices[0]
                usage = resp.usage
                result.prompt_tokens = usage.prompt_tokens if usage else 0
                message = choice.message
                result.completions.append(Completion(
                    text=message.content or "",
                    finish_reason=choice.finish_reason or "stop",
                    completion_tokens=usage.completion_tokens if usage else 0,
                    stop_reason=getattr(choice, "stop_reason", None),
                    reasoning=getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None),
                ))
        except Exception as exc:  # after the SDK's retries: record, never lose the batch
            result.error = f"{type(exc).__name__}: {exc}"
        if on_progress:
            on_progress(1)
        return result

    async def _run(self, requests: list[ChatRequest], on_progress) -> list[ChatResult]:
        from openai import AsyncOpenAI

        sem = asyncio.Semaphore(self.max_concurrency)
        async with AsyncOpenAI(base_url=self.base_url, api_key=self.api_key,
                               timeout=self.timeout_s, max_retries=self.max_retries) as client:
            return await asyncio.gather(*(self._one(client, sem, r, on_progress) for r in requests))

    def chat(self, requests: list[ChatRequest], on_progress: ProgressFn | None = None) -> list[ChatResult]:
        return asyncio.run(self._run(requests, on_progress))
