"""Any OpenAI-compatible chat server (vLLM, SGLang, TGI, hosted APIs) over async HTTP.

Concurrency is bounded by a semaphore. `n` samples are sent as n requests with seeds seed+i so
every sample has exact token counts.

Retries are done here, not by the SDK, so each one is logged. Connection errors, timeouts, 408,
409, 429 and 5xx are retried with exponential backoff and jitter: at least `max_retries` times,
and for as long as the server has been failing for less than `retry_wait_s` (a server that
restarts comes back). Past both, `chat` raises EngineUnavailableError: the stage stops before
storing the batch, the run is recorded as failed, and a resume redoes what is missing. A
request the server refuses (any other 4xx) is that request's own error (ChatResult.error) and
costs nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time

from pipeline.engines.base import ChatRequest, ChatResult, Completion, Engine, ProgressFn

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 429}
_BACKOFF_FIRST_S, _BACKOFF_CAP_S = 0.5, 8.0


class EngineUnavailableError(RuntimeError):
    """The server kept failing past the engine's retries: nothing of the batch is usable."""


def _retryable(exc: Exception) -> bool:
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes timeouts
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code in _RETRY_STATUS or exc.status_code >= 500)


def _brief(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class _Outage:
    """Since when the server has been failing, shared by a batch's requests: the wait budget is
    one per outage, not one per request (requests queued behind the semaphore do not restart it)."""

    def __init__(self) -> None:
        self.since: float | None = None

    def failed(self) -> float:
        if self.since is None:
            self.since = time.monotonic()
        return time.monotonic() - self.since

    def answered(self, base_url: str) -> None:
        if self.since is not None:
            log.warning("engine %s answering again after %.0f s", base_url, time.monotonic() - self.since)
            self.since = None


class OpenAIEngine(Engine):
    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, max_concurrency: int = 16,
                 timeout_s: float = 120.0, max_retries: int = 4, retry_wait_s: float = 0.0,
                 supports_prefill: bool = True):
        self.base_url = base_url
        self.model_name = model
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.retry_wait_s = retry_wait_s
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

    async def _create(self, client, sem, body: dict, outage: _Outage, label: str):
        """One completion, retried while the server is unreachable or overloaded (see module doc)."""
        attempt = 0
        while True:
            try:
                async with sem:
                    resp = await client.chat.completions.create(**body)
                outage.answered(self.base_url)
                return resp
            except Exception as exc:
                if not _retryable(exc):
                    raise
                attempt += 1
                down = outage.failed()
                if attempt > self.max_retries and down >= self.retry_wait_s:
                    raise EngineUnavailableError(
                        f"server {self.base_url} failing for {down:.0f} s, {label} tried {attempt} times "
                        f"(engine.max_retries={self.max_retries}, engine.retry_wait_s={self.retry_wait_s:g}): "
                        f"{_brief(exc)}") from exc
                delay = min(_BACKOFF_CAP_S, _BACKOFF_FIRST_S * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                log.warning("engine %s: %s failed (%s); retry %d in %.1f s (failing for %.0f s, waits up to %g s)",
                            self.base_url, label, _brief(exc), attempt, delay, down, self.retry_wait_s)
                await asyncio.sleep(delay)

    async def _one(self, client, sem, outage: _Outage, index: int, request: ChatRequest, on_progress) -> ChatResult:
        s = request.sampling
        result = ChatResult()
        try:
            for i in range(s.n):
                seed = None if s.seed is None else s.seed + i
                resp = await self._create(client, sem, self._body(request, seed), outage, f"request {index}")
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
        except EngineUnavailableError:
            raise  # the whole batch stops: nothing of it is stored, a resume redoes it
        except Exception as exc:  # refused by the server (4xx) or a bad request: this request's error
            result.error = _brief(exc)
        if on_progress:
            on_progress(1)
        return result

    async def _run(self, requests: list[ChatRequest], on_progress) -> list[ChatResult]:
        from openai import AsyncOpenAI

        sem = asyncio.Semaphore(self.max_concurrency)
        outage = _Outage()
        async with AsyncOpenAI(base_url=self.base_url, api_key=self.api_key,
                               timeout=self.timeout_s, max_retries=0) as client:
            try:
                # A TaskGroup cancels the other requests as soon as one gives up on the server.
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(self._one(client, sem, outage, i, r, on_progress))
                             for i, r in enumerate(requests)]
            except* EngineUnavailableError as failed:
                raise failed.exceptions[0] from None
            return [t.result() for t in tasks]

    def chat(self, requests: list[ChatRequest], on_progress: ProgressFn | None = None) -> list[ChatResult]:
        return asyncio.run(self._run(requests, on_progress))
