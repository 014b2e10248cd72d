"""The Prefect flows: one flow per stage, the full `curate` flow made of them (subflows), pydantic
parameters, retries on engine errors only, run names, logs and counts artifacts. The real flows
on the Prefect test server, a real DuckDB file and the real vLLM engine; the retry tests replace
the stage function only (orchestration units)."""

from __future__ import annotations

import dataclasses

import json
from pathlib import Path

import duckdb
import httpx
import openai
import pytest
import yaml
from prefect import flow
from prefect.exceptions import ParameterTypeError
from typer.testing import CliRunner

import flows.tasks as ft
from curate.cli import app
from flows.curate_flow import curate, export_flow, filter_flow, judge_flow
from flows.params import CurateParams, ExportParams, StageParams
from flows.retries import is_engine_error
from pipeline.run_lock import run_lock
from pipeline.store import StoreLockedError
from schemas.config import CurateConfig
from schemas.yaml_loading import ConfigError
from tests.flows.test_e2e import _config as e2e_config

STAGE_FLOWS = ["synthesize", "filter", "verify", "judge", "score", "export"]


# Questions without a reference answer: nothing for the 135M model to get wrong, so its samples
# pass the lenient filters and judge and reach the shards.
QUESTIONS = [
    {"question": "If all cats are animals and Tom is a cat, is Tom an animal? Options: yes; no", "domain": "logic"},
    {"question": "Write a Python function add(a, b) that returns a + b.", "domain": "code"},
]


def tiny_config(tmp: Path) -> Path:
    """The e2e test's config (small budgets, lenient filters and judge) on a pool of two questions."""
    path = e2e_config(tmp)
    (tmp / "pool.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    config = yaml.safe_load(path.read_text())
    config["rebalance"] = {"targets": {"logic": 0.5, "code": 0.5}}
    path.write_text(yaml.safe_dump(config))
    return path


def _q(db, sql: str):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).fetchall()


# --- parameters --------------------------------------------------------------------------------


def test_a_bad_parameter_fails_naming_the_field(prefect_server, tmp_path):
    db = str(tmp_path / "c.duckdb")
    cases = [({"db": db, "limit": 0}, "params.limit: Input should be greater than 0"),
             ({"db": db, "config_path": str(tmp_path / "nope.yaml")}, "params.config_path: Value error, no config file at"),
             ({"db": db, "outt": "x"}, "params.outt: Extra inputs are not permitted"),
             ({"db": str(tmp_path)}, "params.db: Value error, " + str(tmp_path) + " is a directory")]
    for params, message in cases:
        with pytest.raises(ParameterTypeError) as caught:
            curate(params=params)
        assert message in str(caught.value)
    with pytest.raises(ParameterTypeError, match="params.skip_unchanged"):
        export_flow(params={"db": db, "skip_unchanged": "sometimes"})
    assert not Path(db).exists()  # nothing ran


def test_cli_options_are_validated_before_any_run(tmp_path):
    result = CliRunner().invoke(app, ["run", "--db", str(tmp_path / "c.duckdb"), "--limit", "0",
                                      "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "--limit: Input should be greater than 0" in result.output
    assert "--config: Value error, no config file at" in result.output


def test_a_bad_config_fails_before_the_lock_or_a_run_row(prefect_server, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("judges:\n  rulez: [a]\n")
    db = tmp_path / "c.duckdb"
    with pytest.raises(ConfigError, match=r"bad.yaml:2: field 'judges.rulez'"):
        filter_flow(StageParams(config_path=str(config), db=str(db)))
    assert not db.exists()


def test_a_stage_flow_on_a_locked_database_fails_clearly(prefect_server, tmp_path):
    db = tmp_path / "c.duckdb"
    with run_lock(db), pytest.raises(StoreLockedError, match="is being written by a running"):
        filter_flow(StageParams(db=str(db)))


# --- retries on engine errors only -------------------------------------------------------------


def _connection_error():
    return openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions"))


def test_engine_errors_are_told_from_the_rest():
    try:
        try:
            raise ConnectionRefusedError("connection refused")
        except ConnectionRefusedError as exc:
            raise RuntimeError("engine failed") from exc
    except RuntimeError as chained:
        assert is_engine_error(chained)
    assert is_engine_error(_connection_error())
    assert is_engine_error(httpx.ReadTimeout("timed out"))
    assert is_engine_error(type("EngineDeadError", (Exception,), {})())  # vLLM's engine core died
    assert is_engine_error(type("EngineUnavailableError", (RuntimeError,), {})())  # the server stayed down
    for other in (ConfigError("x.yaml: line 2: judges.rulez"), ValueError("bad"), StoreLockedError("locked"),
                  FileNotFoundError("no pool"), KeyError("k")):
        assert not is_engine_error(other)


def _run_synthesize_task(monkeypatch, db: Path, failures: list[BaseException]) -> tuple[list[int], str]:
    """The real stage task of the synthesize stage (its retry options, no delay), the stage
    failing as given."""
    from flows.run_context import ActiveRun
    from pipeline.stage import RunState, StageReport
    from pipeline.stage_list import STAGES

    calls: list[int] = []

    def stage(ctx):
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return StageReport({"generated": 0})

    monkeypatch.setitem(STAGES, "synthesize", dataclasses.replace(STAGES["synthesize"], run=stage))
    monkeypatch.setattr(ft, "ENGINE_RETRIES", ft.ENGINE_RETRIES | {"retry_delay_seconds": 0})

    @flow
    def one_task(db: str):
        run = ActiveRun(db, {}, RunState("run-1", CurateConfig()))
        try:
            ft.run_stage(run, "synthesize")
            return "COMPLETED"
        except Exception:  # noqa: BLE001 - a plain value: the test flow itself completes either way
            return "FAILED"

    return calls, one_task(str(db))


def test_engine_errors_are_retried(prefect_server, monkeypatch, tmp_path):
    calls, state = _run_synthesize_task(monkeypatch, tmp_path / "c.duckdb", [_connection_error(), TimeoutError("slow server")])
    assert len(calls) == 3 and state == "COMPLETED"  # two retries, then it went through


def test_other_errors_are_not_retried(prefect_server, monkeypatch, tmp_path):
    calls, state = _run_synthesize_task(monkeypatch, tmp_path / "c.duckdb", [ConfigError("config.yaml: line 3: synthesis.n")])
    assert len(calls) == 1 and state == "FAILED"
    calls, state = _run_synthesize_task(monkeypatch, tmp_path / "c.duckdb", [_connection_error()] * 3)
    assert len(calls) == 3 and state == "FAILED"  # retries are bounded


# --- the real flows ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curated(tmp_path_factory, vllm_engine, prefect_server):
    import pipeline.benchmarks as benchmarks

    tmp = tmp_path_factory.mktemp("flows")
    params = CurateParams(config_path=str(tiny_config(tmp)), db=str(tmp / "c.duckdb"), out=str(tmp / "out"))
    real = benchmarks.build_index
    with pytest.MonkeyPatch.context() as mp:  # how often the run builds the benchmark index
        mp.setattr(benchmarks, "build_index", lambda *a, **k: INDEX_BUILDS.append(1) or real(*a, **k))
        return params, curate(params=params)


INDEX_BUILDS: list[int] = []


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _run_logs(client, flow_run_ids) -> list[str]:
    """Every log line of these flow runs: flush the background log worker first, and filter on the server
    (an unfiltered read returns one page, which other tests' logs on the shared server can fill)."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    log_filter = LogFilter(flow_run_id=LogFilterFlowRunId(any_=list(flow_run_ids)))
    return [log.message for log in client.read_logs(log_filter=log_filter, limit=200)]


def _artifacts(key: str) -> list[str]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with _client() as client:
        return [a.data for a in client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))]


@pytest.mark.engine
def test_curate_runs_every_stage_as_a_subflow_of_one_run(curated):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    params, counts = curated
    assert counts["synthesize"]["generated"] == 4 and counts["export"]["status"] == "new shard set"
    assert counts["export"]["rows"] > 0
    assert {"ingest", "screen", "domains", "filters", "verify", "judges", "styles", "difficulty"} <= set(counts)
    runs = _q(params.db, "SELECT run_id, status, config->>'command' FROM runs")
    assert runs == [(counts["run_id"], "finished", "curate")]  # one lock, one run row for all six stages
    flow_run_id = json.loads(_q(params.db, "SELECT config FROM runs")[0][0])["prefect_flow_run_id"]
    with _client() as client:
        parent = client.read_flow_run(flow_run_id)
        subflows = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])), sort=FlowRunSort.START_TIME_ASC)
        names = [client.read_flow(r.flow_id).name for r in subflows]
        tasks = {t.name for r in subflows for t in client.read_task_runs(
            flow_run_filter=FlowRunFilter(id={"any_": [r.id]}))}
        logs = _run_logs(client, [r.id for r in subflows])
    assert names == STAGE_FLOWS and all(r.state.is_completed() for r in subflows)
    assert parent.name.startswith("c.duckdb ") and subflows[0].name.startswith("c.duckdb ")
    assert {"ingest", "screen-questions", "classify-domains", "synthesize", "rule-filters", "verify",
            "judge", "style-metrics", "difficulty", "rebalance-export"} <= tasks
    assert any("2 selected for this run" in m for m in logs)  # say() goes to the run logger
    assert len(INDEX_BUILDS) == 1  # screening and the answer check share the run's benchmark index
    assert any(m.startswith("[export] new shard set: export-") for m in logs)
    artifact = next(a for a in _artifacts("curate-run-counts") if a.startswith(f"# curate run {counts['run_id']}"))
    assert "| synthesize | planned 4, already_done 0, generated 4, errors 0 |" in artifact


@pytest.mark.engine
def test_a_stage_flow_alone_is_a_run_of_its_own(curated):
    params, first = curated
    stage = StageParams(config_path=params.config_path, db=params.db)
    counts = filter_flow(stage)
    assert counts["run_id"] != first["run_id"]
    assert all(c["checked"] == 0 for c in counts["filters"].values())  # everything was checked by curate
    judged = judge_flow(stage)["judges"]["lenient_rule"]
    assert judged["judged"] == 0 and judged["eligible"] == 0
    rows = _q(params.db, "SELECT config->>'command', status FROM runs ORDER BY started_at")
    assert rows == [("curate", "finished"), ("filter", "finished"), ("judge", "finished")]
    artifact = next(a for a in _artifacts("filter-run-counts") if a.startswith(f"# filter run {counts['run_id']}"))
    assert "| filter length | checked 0, failed 0 |" in artifact


@pytest.mark.engine
def test_export_flow_writes_no_new_shard_set_for_an_unchanged_selection(curated):
    params, first = curated
    export = ExportParams(config_path=params.config_path, db=params.db, out=params.out, skip_unchanged=True)
    counts = export_flow(export)
    current = first["export"]["export_id"]
    assert counts["export"]["status"] == f"unchanged, export {current} still current"
    assert sorted(p.name for p in Path(params.out).iterdir()) == [current]
    assert _q(params.db, "SELECT count(*) FROM exports")[0][0] == 1
    artifact = next(a for a in _artifacts("export-run-counts") if a.startswith(f"# export run {counts['run_id']}"))
    assert f"unchanged, export {current} still current" in artifact
    again = export_flow(export.model_copy(update={"skip_unchanged": False}))  # asked for: written again
    assert again["export"]["status"] == "new shard set" and len(list(Path(params.out).iterdir())) == 2
