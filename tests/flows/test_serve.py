"""`curate serve --cron`: the deployment it serves (schedule, parameters), bad schedules refused,
and real scheduled runs of that deployment executed by a Prefect runner (as `serve` does, each
run in its own process) against the test server: the first writes a shard set, the second
(nothing changed) writes none and says so, the third (a new question) writes a new one."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import flows.deployments
from curate.cli import app
from tests.flows.test_flows import tiny_config

runner = CliRunner()
CRON = "*/30 6-18 * * mon-fri"


def _serve(monkeypatch, *args: str):
    """Invoke `curate serve`; what it would serve is captured instead of served."""
    served = []
    monkeypatch.setattr(flows.deployments, "serve_deployments", lambda *d: served.extend(d))
    return runner.invoke(app, ["serve", *args]), served


def _args(tmp: Path, *extra: str) -> list[str]:
    return ["--config", str(tmp / "config.yaml"), "--db", str(tmp / "c.duckdb"), "--out", str(tmp / "shards"), *extra]


def test_serve_builds_the_curate_deployment_with_the_schedule_and_parameters(monkeypatch, tmp_path):
    tiny_config(tmp_path)
    monkeypatch.chdir(tmp_path)  # relative paths are pinned to absolute ones: runs happen later
    result, served = _serve(monkeypatch, "--cron", CRON, "--config", "config.yaml", "--db", "c.duckdb",
                            "--out", "shards", "--limit", "2", "--name", "weekdays", "--timezone", "Europe/Berlin")
    assert result.exit_code == 0, result.output
    (deployment,) = served
    assert (deployment.flow_name, deployment.name) == ("curate", "weekdays")
    (schedule,) = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == (CRON, "Europe/Berlin")
    assert deployment.parameters == {"params": {
        "config_path": str(tmp_path / "config.yaml"), "db": str(tmp_path / "c.duckdb"),
        "out": str(tmp_path / "shards"), "skip_unchanged": True, "questions": None, "limit": 2, "model": None}}
    assert deployment.enforce_parameter_schema  # the API validates runs' parameters against the flow's
    assert "serving curate/weekdays on" in result.output


def test_dry_run_prints_the_deployment_and_serves_nothing(monkeypatch, tmp_path):
    tiny_config(tmp_path)
    result, served = _serve(monkeypatch, "--cron", "0 3 * * *", "--dry-run", *_args(tmp_path))
    assert result.exit_code == 0 and served == []
    shown = json.loads(result.stdout)
    assert shown["schedules"] == [{"cron": "0 3 * * *", "timezone": "UTC"}]
    assert shown["parameters"]["params"]["skip_unchanged"] is True


@pytest.mark.parametrize("args, message", [
    (["--cron", "61 * * * *"], "--cron '61 * * * *': Invalid cron string"),
    (["--cron", "every hour"], "--cron 'every hour': Invalid cron string"),
    (["--cron", "0 3 * * *", "--timezone", "Mars/Olympus"], "--timezone 'Mars/Olympus': Invalid timezone"),
    (["--cron", "0 3 * * *", "--limit", "0"], "--limit: Input should be greater than 0"),
])
def test_a_bad_schedule_or_option_fails_clearly_and_serves_nothing(monkeypatch, tmp_path, args, message):
    tiny_config(tmp_path)
    result, served = _serve(monkeypatch, *args, *_args(tmp_path))
    assert result.exit_code == 2 and served == []
    assert message in " ".join(result.output.split())


def test_a_bad_config_fails_at_serve_time_not_at_the_first_run(monkeypatch, tmp_path):
    (tmp_path / "config.yaml").write_text("synthesis:\n  n: zero\n")
    result, served = _serve(monkeypatch, "--cron", "0 3 * * *", *_args(tmp_path))
    assert result.exit_code == 2 and served == []
    assert "config.yaml:2: field 'synthesis.n'" in " ".join(result.output.split())


def test_the_serving_process_creates_the_cron_runs_ahead_once(monkeypatch, tmp_path, prefect_server):
    from prefect.client.orchestration import get_client

    tiny_config(tmp_path)
    _, (deployment,) = _serve(monkeypatch, "--cron", "*/10 * * * *", "--name", "ahead", *_args(tmp_path))
    deployment_id = deployment.apply()
    now = datetime(2030, 1, 1, 12, 5, 30, tzinfo=timezone.utc)  # far ahead: no runner picks these up

    async def tick():
        async with get_client() as client:
            return await flows.deployments.schedule_due_runs(client, deployment_id, now=now,
                                                             ahead=timedelta(minutes=30))

    first, again = asyncio.run(tick()), asyncio.run(tick())
    assert [r.expected_start_time.strftime("%H:%M") for r in first] == ["12:10", "12:20", "12:30"]
    assert [r.id for r in again] == [r.id for r in first]  # one run per time, however often it ticks
    assert all(r.state.is_scheduled() and r.parameters == deployment.parameters for r in first)

    async def pause_and_tick():
        async with get_client() as client:
            await client.pause_deployment(deployment_id)
            return await flows.deployments.schedule_due_runs(client, deployment_id, now=now + timedelta(hours=1))

    assert asyncio.run(pause_and_tick()) == []  # paused in the UI: nothing is scheduled


# --- real scheduled runs --------------------------------------------------------------------------


def _run_scheduled(deployment) -> object:
    """Register the deployment, schedule a run of it now, let a runner execute it; the finished run."""
    from prefect.client.orchestration import get_client
    from prefect.runner import Runner

    async def go():
        served = Runner(limit=1, pause_on_shutdown=False)
        deployment_id = await served.aadd_deployment(deployment)
        async with get_client() as client:
            scheduled = await client.create_flow_run_from_deployment(deployment_id)
        await served.start(run_once=True)  # picks the run up, executes it in a new process, waits
        async with get_client() as client:
            return await client.read_flow_run(scheduled.id), deployment_id

    return asyncio.run(go())


def _q(db: Path, sql: str):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).fetchall()


def _artifact_of(run_id: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["curate-run-counts"])))
    return next(a.data for a in artifacts if a.data.startswith(f"# curate run {run_id}\n"))


@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.timeout(1800)  # three runs in new processes, two of them load the model: minutes on a busy machine
def test_scheduled_runs_write_a_new_shard_set_only_when_the_selection_changed(monkeypatch, tmp_path, prefect_server):
    tiny_config(tmp_path)
    db, out = tmp_path / "c.duckdb", tmp_path / "shards"
    result, (deployment,) = _serve(monkeypatch, "--cron", "0 0 1 1 *", *_args(tmp_path))
    assert result.exit_code == 0, result.output

    first, deployment_id = _run_scheduled(deployment)
    assert first.state.is_completed(), first.state.message
    assert first.deployment_id == deployment_id and first.parameters == deployment.parameters
    (export_id,) = [p.name for p in out.iterdir()]
    assert json.loads((out / export_id / "manifest.json").read_text())["total_rows"] > 0
    assert json.loads(_q(db, "SELECT counts FROM runs")[0][0])["export"]["status"] == "new shard set"

    second, _ = _run_scheduled(deployment)  # same pool, same store: the same selection
    assert second.state.is_completed(), second.state.message
    assert [p.name for p in out.iterdir()] == [export_id]
    assert _q(db, "SELECT count(*) FROM exports")[0][0] == 1
    run_id, counts = _q(db, "SELECT run_id, counts FROM runs ORDER BY started_at DESC LIMIT 1")[0]
    assert json.loads(counts)["export"]["status"] == f"unchanged, export {export_id} still current"
    assert json.loads(counts)["synthesize"]["generated"] == 0
    assert f"unchanged, export {export_id} still current" in _artifact_of(run_id)

    pool = tmp_path / "pool.jsonl"  # the question source grows: the next run exports again
    new = {"question": "If no fish can fly and Nemo is a fish, can Nemo fly? Options: yes; no", "domain": "logic"}
    pool.write_text(pool.read_text() + json.dumps(new) + "\n")
    third, _ = _run_scheduled(deployment)
    assert third.state.is_completed(), third.state.message
    assert len(list(out.iterdir())) == 2 and _q(db, "SELECT count(*) FROM exports")[0][0] == 2
    assert [r[0] for r in _q(db, "SELECT status FROM runs")] == ["finished"] * 3
