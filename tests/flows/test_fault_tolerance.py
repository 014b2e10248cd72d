"""Fault tolerance, for real: `curate run` killed with SIGKILL in several stages and resumed ends
with the database of an uninterrupted run; two runs on one database at once: the second exits 2
with a clear message, the first finishes, nothing is corrupted. One vLLM OpenAI-compatible server
(the embedded default model) serves every run. bench/kill_resume.py runs 20+ kills."""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest

from tests.kill_harness import (ROOT, SMALL_POOLS, CurateProcess, compare, intact, kill_resume, run_curate,
                                snapshot, write_config)
from tests.vllm_server import SERVED_NAME, VllmServer

pytestmark = [pytest.mark.slow, pytest.mark.engine]

# Seven kills over the stages (bench/kill_resume.py makes 20+).
PLAN = ["ingest", "screen", "synthesis", "synthesis", "filters", "judging", "export"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with VllmServer(tmp_path_factory.mktemp("vllm") / "server.log") as s:
        yield s


def _config(tmp_path, server, **kw):
    return write_config(tmp_path / "config.yaml", server.url, SERVED_NAME, pools=SMALL_POOLS, **kw)


@pytest.mark.timeout(1800)  # a reference run, seven killed runs and a resume, each a real `curate run`
def test_killed_runs_resume_to_the_uninterrupted_result(server, tmp_path):
    config = _config(tmp_path, server, limit=4, n=1)
    ref = run_curate(config, tmp_path / "ref.duckdb", tmp_path / "out-ref", requests=server.request_counts)
    assert ref.returncode == 0, ref.output[-3000:]
    ref_snap = snapshot(tmp_path / "ref.duckdb")
    assert ref_snap.samples == 4 and ref_snap.exported_rows > 0, ref_snap  # the run reaches every stage

    db = tmp_path / "killed.duckdb"
    trials, final = kill_resume(config, db, tmp_path / "out", PLAN, ref, ref_snap, random.Random(0),
                                requests=server.request_counts)

    killed = [t for t in trials if t.attempt.killed]
    print({t.number: (t.attempt.target, t.attempt.stage, t.samples, t.verdicts) for t in trials})
    assert len(killed) >= 5
    assert len({t.attempt.stage for t in killed}) >= 3  # spread over the run, not all in one stage
    assert all(not t.problems for t in trials)  # no duplicate right after any kill
    assert final.returncode == 0
    got = snapshot(db)
    mismatches, notes = compare(ref_snap, got)
    # Every sample there once, every rule's verdict on each once, the same questions screened; and,
    # when the server reproduced every text (it may not: batching), the same passes, kept, exported.
    assert mismatches == []
    print("\n".join(notes))
    assert got.runs["finished"] == 1 and got.runs.get("failed", 0) == 0


def test_second_run_on_a_busy_database_exits_2_and_the_first_finishes(server, tmp_path):
    config = _config(tmp_path, server, limit=2, n=1)
    db = tmp_path / "curate.duckdb"
    with CurateProcess(config, db, tmp_path / "out-1") as first:
        deadline = time.monotonic() + 300
        while first.flow_started is None:  # the flow takes the run lock as it starts
            assert first.proc.poll() is None and time.monotonic() < deadline, "\n".join(first.lines[-30:])
            time.sleep(0.2)
        second = run_curate(config, db, tmp_path / "out-2", timeout_s=300)
        still_running = first.proc.poll() is None
        first_code = first.wait(900)

    assert still_running, "the first run ended before the second tried: the test proved nothing"
    assert second.returncode == 2, second.output[-3000:]
    assert f"is being written by a running `curate run` (pid {first.proc.pid})" in second.output
    assert first_code == 0, "\n".join(first.lines[-40:])
    snap = snapshot(db)  # opens cleanly
    assert intact(snap) == []
    assert snap.runs == {"finished": 1}  # the refused run left no row
    assert snap.samples == 2 and snap.exported_rows == snap.selected
    query = subprocess.run([sys.executable, "-m", "curate.cli", "query", "--db", str(db), "--format", "csv",
                            "SELECT count(*) AS n FROM samples"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert query.returncode == 0 and query.stdout.split() == ["n", "2"], query.stderr
