"""Both engines, for real: in-process vLLM, and the HTTP engine against vLLM's OpenAI server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from pipeline.engines.openai_http import EngineUnavailableError, OpenAIEngine
from pipeline.engines.vllm_local import cpu_dtype
from pipeline.models import SMALL_MODEL, resolve_model
from schemas.chat import ChatRequest, Sampling

pytestmark = pytest.mark.engine

SCHEMA = {
    "type": "object",
    "properties": {"rationale": {"type": "string", "maxLength": 60},
                   "score": {"type": "integer", "minimum": 1, "maximum": 5}},
    "required": ["rationale", "score"], "additionalProperties": False,
}
ASK = [{"role": "user", "content": "What is 7 times 8? Answer briefly."}]


def _check_json(text: str) -> None:
    data = json.loads(text)
    assert set(data) == {"rationale", "score"}
    assert isinstance(data["score"], int) and 1 <= data["score"] <= 5
    assert len(data["rationale"]) <= 60


# --- in-process vLLM -----------------------------------------------------------------


def test_vllm_n_samples_with_token_counts(vllm_engine):
    [result] = vllm_engine.chat([ChatRequest(ASK, Sampling(n=3, temperature=0.8, max_tokens=24, seed=1))])
    assert result.error is None
    assert len(result.completions) == 3
    assert result.prompt_tokens > 5
    for c in result.completions:
        assert 0 < c.completion_tokens <= 24
        assert c.finish_reason in ("stop", "length")


def test_vllm_batch_keeps_request_order_and_seeds_reproduce(vllm_engine):
    reqs = [ChatRequest([{"role": "user", "content": f"Say the number {i} in words."}],
                        Sampling(temperature=0.9, max_tokens=12, seed=100 + i)) for i in range(6)]
    first = vllm_engine.chat(reqs)
    again = vllm_engine.chat(list(reversed(reqs)))[::-1]
    assert [r.completions[0].text for r in first] == [r.completions[0].text for r in again]


def test_vllm_prefill_continues_the_assistant_turn(vllm_engine):
    req = ChatRequest(ASK, Sampling(max_tokens=40, temperature=0.0, stop=("</think>",)), prefill="<think>\n")
    [result] = vllm_engine.chat([req])
    text = result.completions[0].text
    assert not text.startswith("<think>")  # the prefill itself is not repeated
    assert "</think>" not in text  # the stop string is cut off


def test_vllm_structured_json_output(vllm_engine):
    reqs = [ChatRequest([{"role": "user", "content": f"Rate answer {i} from 1 to 5 in JSON."}],
                        Sampling(temperature=0.0, max_tokens=128), json_schema=SCHEMA) for i in range(3)]
    # 128 tokens always fit: a 60-character string is at most 60 tokens, plus the keys.
    for result in vllm_engine.chat(reqs):
        assert result.completions[0].finish_reason == "stop"
        _check_json(result.completions[0].text)


def test_vllm_choice_output_is_one_of_the_choices(vllm_engine):
    choices = ("math", "code", "science", "logic", "other")
    reqs = [ChatRequest([{"role": "user", "content": q}], Sampling(temperature=0.0, max_tokens=8), choice=choices)
            for q in ("What is 2 + 2?", "Who was the first Roman emperor?", "Say hello.")]
    assert all(r.completions[0].text in choices for r in vllm_engine.chat(reqs))


def test_vllm_top_logprobs_per_generated_token(vllm_engine):
    [result] = vllm_engine.chat([ChatRequest(ASK, Sampling(temperature=0.0, max_tokens=6, logprobs=5))])
    c = result.completions[0]
    assert c.top_logprobs is not None and len(c.top_logprobs) == c.completion_tokens
    assert all(1 <= len(step) <= 6 and all(lp <= 0 for lp in step.values()) for step in c.top_logprobs)
    first = max(c.top_logprobs[0], key=c.top_logprobs[0].get)  # greedy: the best candidate was chosen
    assert c.text.startswith(first.strip()) or first.strip() == ""


def test_vllm_choice_with_logprobs_gives_the_probability_of_each_letter(vllm_engine):
    """What the pairwise_letter judge reads: one constrained letter and the log probabilities of A and B."""
    from judges.pairwise import parse_letter

    ask = [{"role": "user", "content": "Which is larger, A: 7 or B: 3? Reply with one letter."}]
    [result] = vllm_engine.chat([ChatRequest(ask, Sampling(temperature=0.0, max_tokens=1, logprobs=5),
                                             choice=("A", "B"))])
    c = result.completions[0]
    assert c.text in ("A", "B") and c.top_logprobs
    letters = {t.strip(): lp for t, lp in c.top_logprobs[0].items() if t.strip() in ("A", "B")}
    assert c.text in letters  # the chosen letter is among the returned candidates
    p_a = parse_letter(c.text, c.top_logprobs).p_a
    assert 0.0 <= p_a <= 1.0 and (p_a >= 0.5) == (c.text == "A")  # greedy picks the likelier letter


# --- OpenAI-compatible HTTP against vLLM's server ------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server():
    model_dir = resolve_model(SMALL_MODEL, announce=lambda _m: None)
    port = _free_port()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
           "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--enforce-eager",
           "--dtype", cpu_dtype(), "--max-model-len", "4096",
           # vLLM 0.32 CPU crashes on seeded requests that are prefilled in chunks (see vllm_local.py).
           "--no-enable-chunked-prefill", "--max-num-batched-tokens", "16384"]
    env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="1")
    log = open(os.path.join(os.environ["CURATE_HOME"], "vllm-server-test.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"vLLM server not ready after 240 s; see {log.name}")
            time.sleep(1)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_http_n_samples_prefill_and_json(vllm_server):
    engine = OpenAIEngine(vllm_server, "smollm2", max_concurrency=4, timeout_s=60, max_retries=2)
    plain, prefilled, structured, chosen = engine.chat([
        ChatRequest(ASK, Sampling(n=2, temperature=0.8, max_tokens=16, seed=3)),
        ChatRequest(ASK, Sampling(max_tokens=24, temperature=0.0, stop=("</think>",)), prefill="<think>\n"),
        ChatRequest([{"role": "user", "content": "Rate 1 to 5 in JSON."}], Sampling(temperature=0.0, max_tokens=64),
                    json_schema=SCHEMA),
        ChatRequest([{"role": "user", "content": "Who was the first Roman emperor?"}],
                    Sampling(temperature=0.0, max_tokens=8), choice=("yes", "no", "maybe")),
    ])
    assert chosen.error is None and chosen.completions[0].text in ("yes", "no", "maybe")
    assert plain.error is None and len(plain.completions) == 2
    assert all(c.completion_tokens > 0 for c in plain.completions)
    assert prefilled.error is None and not prefilled.completions[0].text.startswith("<think>")
    assert structured.error is None
    _check_json(structured.completions[0].text)


def test_http_chat_from_inside_a_running_event_loop(vllm_server):
    """A caller with a loop running in its thread (a notebook, Playwright's sync API) still gets
    results: asyncio.run() refuses there, the engine runs its loop in a worker thread."""
    import asyncio

    engine = OpenAIEngine(vllm_server, "smollm2", max_concurrency=2, timeout_s=60, max_retries=1)

    async def caller():
        return engine.chat([ChatRequest(ASK, Sampling(max_tokens=8, temperature=0.0))])

    [result] = asyncio.run(caller())
    assert result.error is None and result.completions[0].completion_tokens > 0


def test_http_bounded_concurrency_many_requests(vllm_server):
    engine = OpenAIEngine(vllm_server, "smollm2", max_concurrency=3, timeout_s=60, max_retries=1)
    reqs = [ChatRequest([{"role": "user", "content": f"Count to {i}."}], Sampling(max_tokens=8, seed=i))
            for i in range(12)]
    seen = []
    results = engine.chat(reqs, on_progress=seen.append)
    assert sum(seen) == 12
    assert all(r.error is None and r.completions[0].completion_tokens > 0 for r in results)


def test_http_bad_request_is_recorded_not_raised(vllm_server):
    engine = OpenAIEngine(vllm_server, "no-such-model", max_concurrency=2, timeout_s=30, max_retries=0)
    [result] = engine.chat([ChatRequest(ASK, Sampling(max_tokens=4))])
    assert result.error is not None and ("404" in result.error or "NotFound" in result.error)


def test_http_unreachable_server_retries_then_raises():
    engine = OpenAIEngine(f"http://127.0.0.1:{_free_port()}/v1", "m", timeout_s=2, max_retries=2)
    started = time.monotonic()
    # An outage is no request's error: past the retries the batch raises (tests/engines/test_server_outage.py).
    with pytest.raises(EngineUnavailableError, match="Connection"):
        engine.chat([ChatRequest(ASK, Sampling(max_tokens=4))])
    # Two retries with exponential backoff (0.5 s, then 1 s, with jitter) take time.
    assert time.monotonic() - started >= 0.75


def test_http_rollouts_run_tools_in_each_environment(vllm_server):
    """The agentic driver on the HTTP turn engine: one rollout per environment, its first turn
    starting with a written call (SmolLM2 seldom writes one), the call run, the turns' thinking kept."""
    from pipeline.agentic.driver import THINK_PREFILL, RolloutJob, drive
    from pipeline.agentic.envs import make
    from pipeline.agentic.prompting import THINK_FIRST, PromptPlan
    from pipeline.agentic.rollout import Rollout
    from pipeline.agentic.tasks.db_questions import generate
    from pipeline.agentic.tasks.pool_tasks import code_task, math_task
    from pipeline.agentic.turn_engines import HttpTurnEngine

    calls = {"shop_db@1": ("query", {"sql": "SELECT count(*) FROM products"}),
             "calculator@1": ("evaluate", {"expression": "6*7"}),
             "python_exec@1": ("run_python", {"code": "print(6*7)"})}
    tasks = [generate(seed=9, n=1)[0], math_task("m", "What is 6 times 7?", "42"),
             code_task("c", "Write a function f() that returns 42.", ["assert f() == 42"])]
    engine = HttpTurnEngine(vllm_server, "smollm2", max_concurrency=3, timeout_s=120, max_retries=1,
                            renders_tools=False)
    jobs = []
    for i, task in enumerate(tasks):
        env = make(task.environment)
        plan = PromptPlan.draw(i, env.tool_specs(task.tools), "system_prompt", ["hermes"])
        name, arguments = calls[task.environment]
        job = RolloutJob(Rollout(task, env, model="smollm2", seed=i, max_steps=1, system_prompt=THINK_FIRST,
                                 recorded=plan.record()), plan)
        job.first_prefill = (f"{THINK_PREFILL}I use the tool.\n</think>\n<tool_call>\n"
                             f"{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>\n")
        jobs.append(job)
    try:
        stats = drive(jobs, engine, Sampling(temperature=0.7, max_tokens=16, stop=("\n",)), max_in_flight=3)
    finally:
        engine.close()
    assert stats.rollouts == 3 and stats.completion_tokens > 0
    for job in jobs:
        t = job.rollout.trajectory()
        tool = next(m for m in t.messages if m.role == "tool")
        # steps >= 1: the model may write another call after the given one
        assert t.steps >= 1 and tool.tool_status == "ok" and t.messages[2].reasoning == "I use the tool."
        assert t.environment == "shop_db@1" or "42" in tool.content
