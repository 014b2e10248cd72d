"""Several OpenAI-compatible servers behind one client list (pipeline/engines/openai_http.py).

These test the routing and fail-over logic, so they run against FakeChatServer: a stand-in HTTP
server that answers the chat completions API with its own name (an orchestration test double;
nothing is generated). The same engine against real vLLM servers: tests/engines/test_server_pool_vllm.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.engines.openai_http import EngineUnavailableError, OpenAIEngine
from schemas.chat import ChatRequest, Sampling
from schemas.config import EngineConfig
from tests.vllm_server import free_port


class FakeChatServer:
    """Answers POST /v1/chat/completions with "<name> seed=<seed>" after `delay_s`; counts requests
    and the most it had in flight; with fail_after=k, answers 503 from the (k+1)-th request on."""

    def __init__(self, name: str, delay_s: float = 0.05, fail_after: int | None = None):
        self.name, self.delay_s, self.fail_after = name, delay_s, fail_after
        self.requests = self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.requests += 1
                    failing = fake.fail_after is not None and fake.requests > fake.fail_after
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                time.sleep(fake.delay_s)
                with fake._lock:
                    fake.in_flight -= 1
                if failing:
                    self._send(503, {"error": {"message": "overloaded", "type": "server_error"}})
                    return
                self._send(200, {
                    "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": f"{fake.name} seed={body.get('seed')}"}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})

            def _send(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    made: list[FakeChatServer] = []

    def make(*args, **kwargs) -> FakeChatServer:
        made.append(FakeChatServer(*args, **kwargs))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _ask(count: int, n: int = 1) -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": f"question {i}"}], Sampling(n=n, seed=100, max_tokens=4))
            for i in range(count)]


def test_requests_spread_over_the_servers_and_a_requests_samples_stay_on_one(servers):
    a, b = servers("a"), servers("b")
    engine = OpenAIEngine([a.url, b.url], "m", max_concurrency=3)
    results = engine.chat(_ask(24, n=3))
    assert all(r.error is None and len(r.completions) == 3 for r in results)
    for r in results:  # the three samples of a request come from one server, with seeds 100..102
        texts = [c.text for c in r.completions]
        assert len({t.split()[0] for t in texts}) == 1 and [t.split()[1] for t in texts] == [
            "seed=100", "seed=101", "seed=102"]
    assert a.requests + b.requests == 72 and min(a.requests, b.requests) >= 24  # both carried a fair share
    assert a.max_in_flight <= 3 and b.max_in_flight <= 3  # max_concurrency is per server
    assert engine.last_batch_sent == {a.url: a.requests, b.url: b.requests}


def test_two_servers_take_about_half_the_time_of_one(servers):
    # Each fake answer takes 0.1 s and a server admits 2 at a time: 16 requests are 8 rounds on one
    # server, 4 on two. A routing ratio within one run, not a speed figure.
    one = servers("one", delay_s=0.1)
    a, b = servers("a", delay_s=0.1), servers("b", delay_s=0.1)
    started = time.monotonic()
    OpenAIEngine([one.url], "m", max_concurrency=2).chat(_ask(16))
    alone = time.monotonic() - started
    started = time.monotonic()
    OpenAIEngine([a.url, b.url], "m", max_concurrency=2).chat(_ask(16))
    pooled = time.monotonic() - started
    assert pooled < 0.75 * alone, (pooled, alone)


def test_a_dead_server_in_the_list_is_skipped(servers, caplog):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    live = servers("live")
    engine = OpenAIEngine([dead, live.url], "m", max_concurrency=4, max_retries=2, retry_wait_s=60)
    with caplog.at_level(logging.WARNING, logger="pipeline.engines.openai_http"):
        results = engine.chat(_ask(12, n=2))
    assert all(r.error is None and all(c.text.startswith("live") for c in r.completions) for r in results)
    assert live.requests == 24  # every sample answered once, by the live server
    moved = [r.getMessage() for r in caplog.records if dead in r.getMessage()]
    assert moved and all(f"on {live.url}" in m and "APIConnectionError" in m for m in moved)


def test_a_server_that_starts_failing_mid_batch_hands_its_requests_over(servers):
    flaky, steady = servers("flaky", fail_after=3), servers("steady")
    engine = OpenAIEngine([flaky.url, steady.url], "m", max_concurrency=2, max_retries=2, retry_wait_s=60)
    results = engine.chat(_ask(20, n=2))
    texts = [c.text for r in results for c in r.completions]
    assert all(r.error is None for r in results) and len(texts) == 40
    assert sum(t.startswith("flaky") for t in texts) <= 3  # only what it answered before failing
    assert flaky.requests > 3  # it was tried and failed over from, not just avoided


def test_the_batch_gives_up_only_when_every_server_has_failed_long_enough(servers):
    dead = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    engine = OpenAIEngine(dead, "m", max_retries=1, retry_wait_s=1.0)
    started = time.monotonic()
    with pytest.raises(EngineUnavailableError, match=r"all 2 servers failing for at least 1 s"):
        engine.chat(_ask(4))
    assert time.monotonic() - started >= 1.0


def test_config_names_one_server_or_a_list():
    assert EngineConfig(kind="openai", base_url="http://h:1/v1").servers == ["http://h:1/v1"]
    assert EngineConfig(kind="openai", base_urls=["http://h:1/v1", "http://h:2/v1"]).servers == [
        "http://h:1/v1", "http://h:2/v1"]
    with pytest.raises(ValueError, match="not both"):
        EngineConfig(kind="openai", base_url="http://h:1/v1", base_urls=["http://h:2/v1"])
    with pytest.raises(ValueError, match="twice"):
        EngineConfig(kind="openai", base_urls=["http://h:1/v1", "http://h:1/v1"])
