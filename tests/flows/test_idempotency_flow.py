"""Row-level idempotence on the real thing: `curate run` (the Prefect `curate` flow) with the real
vLLM CPU engine and a real DuckDB file, engine calls counted (pipeline/engines/factory.py).

One database, five runs of the end-to-end test's small config (tests/flows/test_e2e.py), differing only
in one cheap filter's parameter, filters.length.default.min_reasoning_chars:
  1 strict (10**6: every sample fails `length`, so nothing reaches the judge)   the first run
  2 strict again    a re-run of a finished run: zero engine calls, nothing new in the catalog
  3 lenient (1)     `length` recomputed for every sample, every other rule's rows untouched, the
                    judge called exactly for the samples that now pass, no synthesis
  4 strict again    switching back: nothing recomputed, no engine call, the status of run 2
  5 lenient again   switching back again: the same, with the status of run 3
Wall times of runs 1 and 2 are printed (bench/rerun_cost.py measures them properly)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from pipeline.engines.factory import engine_calls, engine_calls_since
from tests.flows.test_e2e import _config

pytestmark = [pytest.mark.engine, pytest.mark.slow]

STRICT, LENIENT = 10**6, 1
CATALOG = ("samples", "verdicts", "question_verdicts", "question_difficulty", "question_domains", "rule_configs")
runner = CliRunner()


def _q(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).fetchall()


def _snapshot(db: Path) -> dict[str, list[tuple]]:
    """Every row of the tables a stage writes per sample or question (timestamps included)."""
    return {t: _q(db, f"SELECT * FROM {t} ORDER BY ALL") for t in CATALOG}


def _verdicts(db: Path, where: str) -> list[tuple]:
    return _q(db, f"""SELECT sample_id, rule, rule_version, config_hash, passed, run_id, created_at FROM verdicts
                      WHERE {where} ORDER BY ALL""")


def _status(db: Path) -> list[tuple]:
    return _q(db, "SELECT sample_id, kept, failed_rules FROM sample_status ORDER BY sample_id")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, vllm_engine, prefect_server):
    """Run the sequence; after each run keep its engine calls, counts, wall time and catalog."""
    tmp = tmp_path_factory.mktemp("idempotency")
    db, out = tmp / "curate.duckdb", tmp / "out"
    base = yaml.safe_load(_config(tmp).read_text())
    results = []
    for i, min_chars in enumerate([STRICT, STRICT, LENIENT, STRICT, LENIENT], start=1):
        config = json.loads(json.dumps(base))
        config["filters"]["length"] = {"default": {"min_reasoning_chars": min_chars}}
        path = tmp / f"config-{i}.yaml"
        path.write_text(yaml.safe_dump(config))
        before, started = engine_calls(), time.perf_counter()
        result = runner.invoke(app, ["run", "--config", str(path), "--db", str(db), "--out", str(out)],
                               catch_exceptions=False)
        seconds = time.perf_counter() - started
        assert result.exit_code == 0, result.output
        counts = json.loads(_q(db, "SELECT counts FROM runs ORDER BY started_at DESC LIMIT 1")[0][0])
        results.append({"calls": engine_calls_since(before), "counts": counts, "seconds": seconds,
                        "catalog": _snapshot(db), "status": _status(db),
                        "run_id": _q(db, "SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")[0][0]})
    return db, results


NO_CALLS = {"batches": 0, "requests": 0, "completions": 0, "model_loads": 0}


def test_first_run_calls_the_engine_and_records_its_calls(runs):
    _, r = runs
    assert r[0]["calls"]["requests"] > 0 and r[0]["calls"]["completions"] >= 8  # 8 samples synthesized
    assert r[0]["counts"]["engine_calls"] == r[0]["calls"]  # the run's counts carry the same figures
    assert r[0]["counts"]["synthesize"]["generated"] == 8
    assert all(not kept and "length" in failed for _, kept, failed in r[0]["status"])  # strict: all fail


def test_a_rerun_of_a_finished_run_makes_no_engine_call_and_writes_nothing(runs, record_property):
    _, r = runs
    first, again = r[0], r[1]
    assert again["calls"] == NO_CALLS and again["counts"]["engine_calls"] == NO_CALLS
    assert again["counts"]["synthesize"]["generated"] == 0
    assert again["catalog"] == first["catalog"]  # every row as it was, timestamps included
    assert again["status"] == first["status"]
    print(f"\nfirst run {first['seconds']:.1f} s ({first['calls']['requests']} engine requests), "
          f"identical re-run {again['seconds']:.1f} s (0 requests): {again['seconds'] / first['seconds']:.0%}")
    record_property("first_run_s", round(first["seconds"], 2))
    record_property("rerun_s", round(again["seconds"], 2))


def test_a_changed_filter_parameter_recomputes_that_filter_and_judges_only_the_newly_passing(runs):
    db, r = runs
    before, after = r[1], r[2]
    run_id = after["run_id"]
    assert after["catalog"]["samples"] == before["catalog"]["samples"]  # no synthesis
    assert after["counts"]["synthesize"]["generated"] == 0
    # Other rules' verdict rows are the very same rows; `length` got one new verdict per sample.
    untouched = "rule <> 'length' AND stage <> 'judge'"
    assert _verdicts(db, untouched) == [v for v in _rows_of(before) if v[1] != "length" and v[1] != "lenient_rule"]
    new = _verdicts(db, f"run_id = '{run_id}'")
    assert {v[1] for v in new} <= {"length", "lenient_rule"}
    assert len([v for v in new if v[1] == "length"]) == 8
    assert after["counts"]["filters"]["length"]["checked"] == 8
    assert all(c["checked"] == 0 for rule, c in after["counts"]["filters"].items() if rule != "length")
    # Downstream: the judge ran on exactly the samples that pass everything else now, and the
    # engine calls of the run are its requests (one per attempt), nothing else.
    survivors = {row[0] for row in _q(db, """
        SELECT s.sample_id FROM samples s WHERE NOT EXISTS (SELECT 1 FROM latest_verdicts v
            WHERE v.sample_id = s.sample_id AND v.stage <> 'judge' AND NOT v.passed)""")}
    judged = _q(db, f"""SELECT sample_id, CAST(json_extract(details, '$.attempts') AS INTEGER) FROM verdicts
                       WHERE rule = 'lenient_rule' AND run_id = '{run_id}'""")
    assert survivors and {s for s, _ in judged} == survivors
    assert after["counts"]["judges"]["lenient_rule"]["judged"] == len(survivors)
    assert after["calls"]["requests"] == after["calls"]["completions"] == sum(a for _, a in judged)
    assert after["counts"]["engine_calls"]["requests"] == after["calls"]["requests"]
    assert any(kept for _, kept, _ in after["status"])


def _rows_of(result: dict) -> list[tuple]:
    """The verdict rows of a snapshot in _verdicts' column order."""
    return sorted((row[0], row[2], row[3], row[12], row[4], row[8], row[9]) for row in result["catalog"]["verdicts"])


def test_switching_the_parameter_back_recomputes_nothing(runs):
    _, r = runs
    for back, same_status_as in ((r[3], r[1]), (r[4], r[2])):
        assert back["calls"] == NO_CALLS
        assert all(c["checked"] == 0 for c in back["counts"]["filters"].values())
        assert back["counts"]["judges"]["lenient_rule"]["judged"] == 0
        # Verdicts, samples and the rest exactly as they were; only rule_configs names the hash in use.
        for table in set(CATALOG) - {"rule_configs"}:
            assert back["catalog"][table] == r[2]["catalog"][table], table
        assert back["status"] == same_status_as["status"]
