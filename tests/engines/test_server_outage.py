"""The OpenAI-compatible server goes away mid-run (pipeline/engines/openai_http.py).

Fast tests: a server that never answers is retried with backoff, each retry logged, then the
batch raises EngineUnavailableError (nothing of it returned as data); a request the server
refuses stays that request's error. Slow test: a real vLLM server crashed during synthesis and
started again (the run waits and finishes), and crashed during judging for longer than the
engine waits (the run fails, recorded as such, nothing half-written; a resume completes it)."""

from __future__ import annotations

import logging
import shutil
import time

import pytest
import yaml

from pipeline.engines.openai_http import EngineUnavailableError, OpenAIEngine
from schemas.chat import ChatRequest, Sampling
from tests.kill_harness import SMALL_POOLS, CurateProcess, finished_stage, run_curate, snapshot, wait_for, write_config
from tests.vllm_server import SERVED_NAME, VllmServer, free_port

ASK = [{"role": "user", "content": "What is 7 times 8?"}]


def test_unreachable_server_is_retried_with_backoff_then_the_batch_raises(caplog):
    engine = OpenAIEngine(f"http://127.0.0.1:{free_port()}/v1", "m", max_retries=2, retry_wait_s=1.5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="pipeline.engines.openai_http"):
        with pytest.raises(EngineUnavailableError, match=r"engine.retry_wait_s=1.5.*APIConnectionError"):
            engine.chat([ChatRequest(ASK, Sampling(max_tokens=4)) for _ in range(3)])
    waited = time.monotonic() - started
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert retries and all("APIConnectionError" in m for m in retries)
    assert any("retry 2 in" in m for m in retries)  # at least max_retries retries, each logged
    assert waited >= 1.5  # and for at least retry_wait_s since the first failure


def test_requests_queued_behind_the_semaphore_share_one_wait():
    # 12 requests, 2 at a time: one outage budget for the batch, not 6 consecutive ones.
    engine = OpenAIEngine(f"http://127.0.0.1:{free_port()}/v1", "m", max_concurrency=2, max_retries=1,
                          retry_wait_s=1.0)
    started = time.monotonic()
    with pytest.raises(EngineUnavailableError):
        engine.chat([ChatRequest(ASK, Sampling(max_tokens=4)) for _ in range(12)])
    assert time.monotonic() - started < 6


# --- a real server that goes away -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.engine
@pytest.mark.timeout(1800)  # three server starts and four real runs
def test_server_crash_mid_run_waits_or_fails_cleanly_and_resume_completes(tmp_path):
    server = VllmServer(tmp_path / "server.log")
    server.start()
    try:
        # A: crashed while synthesis is in flight, back within engine.retry_wait_s: the run waits, finishes.
        config_a = write_config(tmp_path / "a.yaml", server.url, SERVED_NAME, limit=4, n=1, pools=SMALL_POOLS,
                                retry_wait_s=900)
        db_a = tmp_path / "a.duckdb"
        with CurateProcess(config_a, db_a, tmp_path / "out-a") as p:
            wait_for(lambda: finished_stage(p, "domains"), "synthesis", p)
            time.sleep(2)
            server.stop(crash=True)
            wait_for(lambda: any("retry" in line and "APIConnectionError" in line for line in p.lines),
                      "logged retry", p, 120)
            server.start()
            assert p.wait(900) == 0, "\n".join(p.lines[-40:])
        print("\n".join(line for line in p.lines if "engine http" in line))
        assert any("answering again" in line for line in p.lines)
        a = snapshot(db_a)
        assert a.samples == 4 and a.runs == {"finished": 1} and a.judge_engine_errors == 0
        assert a.verdicts.get("judge/lenient_rule", (0, 0))[0] > 0

        # B: crashed while judging (a second rule, on a copy of A), down for longer than the engine
        # waits: the run fails with the engine's error in `runs`, and no verdict from the lost batch.
        db_b = tmp_path / "b.duckdb"
        shutil.copy(db_a, db_b)
        config_b = tmp_path / "b.yaml"
        cfg = yaml.safe_load(config_a.read_text())
        cfg["engine"].update(retry_wait_s=2, max_retries=1)
        cfg["judges"]["rules"] = ["lenient_rule", "logical_completeness"]
        config_b.write_text(yaml.safe_dump(cfg))
        with CurateProcess(config_b, db_b, tmp_path / "out-b") as p:
            wait_for(lambda: finished_stage(p, "verify"), "judging", p)
            server.stop(crash=True)
            code = p.wait(900)  # the engine gives up after 2 s; flow task retries may try again first
        assert code != 0
        b = snapshot(db_b)
        assert b.runs == {"finished": 1, "failed": 1}
        [error] = b.failed_errors
        print(f"failed run: {error}")
        assert error.startswith("EngineUnavailableError: server http") and "failing for" in error, error
        assert "judge/logical_completeness" not in b.verdicts and b.judge_engine_errors == 0
        assert b.samples == a.samples and b.verdicts == a.verdicts

        server.start()
        resumed = run_curate(config_b, db_b, tmp_path / "out-b")
        assert resumed.returncode == 0, resumed.output[-3000:]
        c = snapshot(db_b)
        judged = c.verdicts["judge/logical_completeness"][0]
        assert judged == a.kept  # the cascade: every sample still undecided after lenient_rule, once
        assert c.judge_engine_errors == 0 and c.samples == a.samples
        assert {k: v for k, v in c.verdicts.items() if k != "judge/logical_completeness"} == a.verdicts
    finally:
        server.stop()
