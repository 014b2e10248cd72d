"""Any OpenAI-compatible chat server (vLLM, SGLang, TGI, hosted APIs) over async HTTP, or several
replicas of one model behind a single client list.

Routing: each request goes to the least busy server that is not backing off (fewest requests in
flight, ties to the earlier one in the list); `n` samples are sent as n requests with seeds seed+i,
all to the server the request started on (its prompt stays in that server's prefix cache), and each
server admits at most `max_concurrency` at a time, so the throughput grows with the list.

Retries are done here, not by the SDK, so each one is logged. Connection errors, timeouts, 408,
409, 429 and 5xx mark that server as failing: it backs off exponentially (with jitter) and the
request moves to another server at once if one is healthy. A request gives up only when it has been
retried at least `max_retries` times and every server has been failing for `retry_wait_s` (a
server that restarts comes back; with one server this is just "retry until it has been down that
long"). Then `chat` raises EngineUnavailableError: the stage stops before storing the batch, the
run is recorded as failed, and a resume redoes what is missing. A request the server refuses (any
other 4xx) is that request's own error (ChatResult.error) and costs nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Sequence

from pipeline.engines.base import ChatRequest, ChatResult, Completion, Engine, ProgressFn

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 429}
_BACKOFF_FIRST_S, _BACKOFF_CAP_S = 0.5, 8.0


def _top_logprobs(logprobs) -> list[dict[str, float]] | None:
    """OpenAI's choice.logprobs.content[i].top_logprobs as {token: log probability} per token."""
    content = getattr(logprobs, "content", None)
    if not content:
        return None
    return [{t.token: t.logprob for t in (step.top_logprobs or [])} for step in content]


class EngineUnavailableError(RuntimeError):
    """Every server kept failing past the engine's retries: nothing of the batch is usable."""


def _retryable(exc: Exception) -> bool:
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes timeouts
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code in _RETRY_STATUS or exc.status_code >= 500)


def _brief(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class _Server:
    """One replica during one batch: its client, its admission semaphore, how busy it is, and since
    when it has been failing. The wait budget is one per outage, not one per request (requests
    queued behind the semaphore do not restart it)."""

    def __init__(self, url: str, client, max_concurrency: int) -> None:
        self.url = url
        self.client = client
        self.sem = asyncio.Semaphore(max_concurrency)
        self.in_flight = 0
        self.sent = 0
        self.failures = 0  # consecutive
        self.since: float | None = None  # failing since (monotonic)
        self.retry_at = 0.0  # backing off until (monotonic)

    def failed(self) -> float:
        now = time.monotonic()
        if self.since is None:
            self.since = now
        self.failures += 1
        delay = min(_BACKOFF_CAP_S, _BACKOFF_FIRST_S * 2 ** (self.failures - 1)) * random.uniform(0.5, 1.0)
        self.retry_at = max(self.retry_at, now + delay)
        return now - self.since

    def answered(self) -> None:
        if self.since is not None:
            log.warning("engine %s answering again after %.0f s", self.url, time.monotonic() - self.since)
        self.since, self.failures, self.retry_at = None, 0, 0.0


def _pick(servers: list[_Server], prefer: _Server | None) -> tuple[_Server, float]:
    """The server to send to and how long to wait first: `prefer` (where the request started) while
    it is healthy, else the least busy healthy one, else the one whose back-off ends first."""
    now = time.monotonic()
    healthy = [s for s in servers if s.retry_at <= now]
    if prefer is not None and prefer in healthy:
        return prefer, 0.0
    if healthy:
        return min(healthy, key=lambda s: s.in_flight), 0.0
    soonest = min(servers, key=lambda s: s.retry_at)
    return soonest, soonest.retry_at - now


class OpenAIEngine(Engine):
    def __init__(self, base_url: str | Sequence[str], model: str, *, api_key: str | None = None,
                 max_concurrency: int = 16, timeout_s: float = 120.0, max_retries: int = 4,
                 retry_wait_s: float = 0.0, supports_prefill: bool = True):
        self.base_urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not self.base_urls:
            raise ValueError("at least one server URL is needed")
        self.base_url = self.base_urls[0]
        self.model_name = model
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.max_concurrency = max_concurrency  # per server
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.retry_wait_s = retry_wait_s
        self.supports_prefill = supports_prefill
        self.last_batch_sent: dict[str, int] = {}  # per server: requests sent in the last chat(), retries included

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
        if s.logprobs:
            body.update(logprobs=True, top_logprobs=s.logprobs)
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.json_schema, "strict": True},
            }
        if request.choice is not None:
            # vLLM's OpenAI server extension; other servers ignore it (the caller parses strictly).
            extra["structured_outputs"] = {"choice": list(request.choice)}
        if extra:
            body["extra_body"] = extra
        return body

    def _give_up(self, servers: list[_Server], attempt: int) -> bool:
        now = time.monotonic()
        return attempt > self.max_retries and all(
            s.since is not None and now - s.since >= self.retry_wait_s for s in servers)

    async def _create(self, servers: list[_Server], body: dict, label: str, prefer: _Server | None):
        """One completion and the server that gave it, retried and failed over while servers are
        unreachable or overloaded (see module doc)."""
        attempt = 0
        while True:
            server, wait = _pick(servers, prefer)
            if wait > 0:
                await asyncio.sleep(wait)
            server.in_flight += 1
            try:
                async with server.sem:
                    server.sent += 1
                    resp = await server.client.chat.completions.create(**body)
                server.answered()
                return resp, server
            except Exception as exc:
                if not _retryable(exc):
                    raise
                attempt += 1
                down = server.failed()
                if self._give_up(servers, attempt):
                    where = (f"server {server.url} failing for {down:.0f} s" if len(servers) == 1 else
                             f"all {len(servers)} servers failing for at least {self.retry_wait_s:g} s")
                    raise EngineUnavailableError(
                        f"{where}, {label} tried {attempt} times (engine.max_retries={self.max_retries}, "
                        f"engine.retry_wait_s={self.retry_wait_s:g}): {_brief(exc)}") from exc
                following, delay = _pick(servers, None)
                log.warning("engine %s: %s failed (%s); retry %d%s in %.1f s (failing for %.0f s, waits up to %g s)",
                            server.url, label, _brief(exc), attempt,
                            "" if following is server else f" on {following.url}", delay, down, self.retry_wait_s)
                prefer = None
            finally:
                server.in_flight -= 1

    async def _one(self, servers: list[_Server], index: int, request: ChatRequest, on_progress) -> ChatResult:
        s = request.sampling
        result = ChatResult()
        server = None
        try:
            for i in range(s.n):
                seed = None if s.seed is None else s.seed + i
                resp, server = await self._create(servers, self._body(request, seed), f"request {index}", server)
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
                    top_logprobs=_top_logprobs(getattr(choice, "logprobs", None)),
                ))
        except EngineUnavailableError:
            raise  # the whole batch stops: nothing of it is stored, a resume redoes it
        except Exception as exc:  # refused by the server (4xx) or a bad request: this request's error
            result.error = _brief(exc)
        if on_progress:
            on_progress(1)
        return result

    async def _run(self, requests: list[ChatRequest], on_progress) -> list[ChatResult]:
        from contextlib import AsyncExitStack

        from openai import AsyncOpenAI

        async with AsyncExitStack() as stack:
            servers = [_Server(url, await stack.enter_async_context(AsyncOpenAI(
                base_url=url, api_key=self.api_key, timeout=self.timeout_s, max_retries=0)), self.max_concurrency)
                for url in self.base_urls]
            try:
                # A TaskGroup cancels the other requests as soon as one gives up on the servers.
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(self._one(servers, i, r, on_progress)) for i, r in enumerate(requests)]
            except* EngineUnavailableError as failed:
                raise failed.exceptions[0] from None
            finally:
                self.last_batch_sent = {s.url: s.sent for s in servers}
            return [t.result() for t in tasks]

    def chat(self, requests: list[ChatRequest], on_progress: ProgressFn | None = None) -> list[ChatResult]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # the usual case: no event loop in this thread
            return asyncio.run(self._run(requests, on_progress))
        # Called from inside a running loop (a notebook, Playwright's sync API, an async caller):
        # asyncio.run() refuses there, so the batch gets a loop of its own in a worker thread.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self._run(requests, on_progress)).result()
