"""Two real vLLM servers behind one client list (engine.base_urls): a `curate run` spreads its
requests over both, and when one crashes mid-synthesis the run moves its requests to the other and
finishes with nothing missing. The routing details are tested fast in tests/engines/test_server_pool.py."""

from __future__ import annotations

import threading

import pytest
import yaml

from tests.kill_harness import SMALL_POOLS, CurateProcess, finished_stage, snapshot, wait_for, write_config
from tests.vllm_server import SERVED_NAME, VllmServer


def _start_both(servers: list[VllmServer]) -> None:
    errors: list[Exception] = []

    def start(server: VllmServer) -> None:
        try:
            server.start(timeout_s=600)
        except Exception as exc:  # noqa: BLE001 - re-raised below, after both tried
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.mark.slow
@pytest.mark.engine
@pytest.mark.timeout(1800)
def test_a_run_uses_both_servers_and_survives_losing_one(tmp_path):
    a, b = VllmServer(tmp_path / "a.log"), VllmServer(tmp_path / "b.log")
    try:
        _start_both([a, b])
        config = write_config(tmp_path / "c.yaml", a.url, SERVED_NAME, limit=6, n=2, pools=SMALL_POOLS,
                              max_retries=2, retry_wait_s=60)
        cfg = yaml.safe_load(config.read_text())
        cfg["engine"].pop("base_url")
        cfg["engine"].update(base_urls=[a.url, b.url], max_concurrency=4)
        config.write_text(yaml.safe_dump(cfg))
        db = tmp_path / "c.duckdb"
        with CurateProcess(config, db, tmp_path / "out") as p:
            wait_for(lambda: finished_stage(p, "domains"), "synthesis", p)
            # Both are used before the crash: B has answered some of the synthesis requests.
            wait_for(lambda: b.request_counts()[0] >= 2, "requests answered by server B", p, 600)
            answered_by_a_before = a.request_counts()[0]
            b.stop(crash=True)
            code = p.wait(1200)
        assert code == 0, "\n".join(p.lines[-40:])
        moved = [line for line in p.lines if f"engine {b.url}" in line and f"on {a.url}" in line]
        assert moved, "\n".join(p.lines[-60:])  # the requests B dropped were logged and sent to A
        snap = snapshot(db)
        assert snap.runs == {"finished": 1} and snap.samples == 12  # 6 questions x 2 samples, none lost
        assert snap.duplicate_keys == 0 and snap.judge_engine_errors == 0
        assert snap.verdicts.get("judge/lenient_rule", (0, 0))[0] > 0  # judging ran on A alone
        assert a.request_counts()[0] > answered_by_a_before
    finally:
        a.stop()
        b.stop()
