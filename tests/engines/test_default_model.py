"""The embedded default, end to end: `curate run` on Qwen2.5-Coder-1.5B-Instruct (the real model,
converted from its PyPI parts) with the shipped config and pools, a few questions. Slow: minutes
on 2 CPU cores. The fast engine tests use SmolLM2 (tests/conftest.py). `curate run` runs in its own
process, as a user runs it: the 1.5B model's 13 GB go back to the machine when it exits (in the
pytest process they stayed, and the next slow test's two vLLM servers were killed for memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml
from pipeline.models import DEFAULT_MODEL
from tests.conftest import ROOT

pytestmark = [pytest.mark.engine, pytest.mark.slow]
SOURCES = ["gsm8k", "mbpp", "bigbench-object_counting", "bigbench-navigate"]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("default")
    config = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    for pool in config["pools"]:
        pool["path"] = str((ROOT / "configs" / pool["path"]).resolve())
    config["pools"] = [p for p in config["pools"] if p["source"] in SOURCES]  # quick to read and screen
    config["limit"] = 4
    config["synthesis"]["n"] = 1
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    db, out = tmp / "curate.duckdb", tmp / "out"
    args = [sys.executable, "-m", "curate.cli", "run", "--config", str(path), "--db", str(db), "--out", str(out)]
    env = dict(os.environ, COLUMNS="200")
    first = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=2400)
    second = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    return db, first, second


def _q(db: Path, sql: str):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_the_default_model_runs_every_stage(default_run):
    db, first, second = default_run
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    n, model, split = _q(db, """SELECT count(*), any_value(model), count(*) FILTER (WHERE reasoning <> '' AND answer <> '')
                                FROM samples""")[0]
    assert (n, model) == (4, DEFAULT_MODEL) and split == 4  # every reply has a reasoning and an answer part
    closed = {r[0] for r in _q(db, "SELECT DISTINCT think_closed_by FROM samples")}
    assert closed <= {"model", "forced_eos", "forced_budget"}
    rules = {r[0] for r in _q(db, "SELECT DISTINCT rule FROM verdicts")}
    assert {"structure", "truncation", "format_compliance", "answer_match", "code_tests"} <= rules
    # The judge runs on what the cheap rules and verification kept (maybe nothing of 4 samples of
    # a 1.5B model; the next test checks it judged exactly those).
    kept = _q(db, """SELECT count(*) FROM samples s WHERE NOT EXISTS (SELECT 1 FROM latest_verdicts v
                     WHERE v.sample_id = s.sample_id AND NOT v.passed AND v.stage <> 'judge')""")[0][0]
    assert ("logical_completeness" in rules) == (kept > 0)


def test_the_judge_judged_every_sample_the_cheap_rules_and_verification_kept(default_run):
    db, *_ = default_run
    due = _q(db, """SELECT count(*) FROM sample_status st WHERE NOT EXISTS (
                        SELECT 1 FROM latest_verdicts v WHERE v.sample_id = st.sample_id AND NOT v.passed
                          AND v.stage <> 'judge')""")[0][0]
    judged = _q(db, "SELECT count(DISTINCT sample_id) FROM verdicts WHERE stage = 'judge'")[0][0]
    assert judged == due and _q(db, "SELECT count(*) FROM judge_pending")[0][0] == 0
    assert _q(db, "SELECT count(*) FROM verdicts WHERE stage = 'judge' AND score IS NULL")[0][0] == 0  # no judge errors


def test_exports_are_verified_and_checked_against_the_models_own_template(default_run):
    db, *_ = default_run
    manifest = json.loads(_q(db, "SELECT manifest FROM exports ORDER BY created_at LIMIT 1")[0][0])
    assert manifest["target"]["tokenizer"] == DEFAULT_MODEL
    unverified = _q(db, """SELECT count(*) FROM selections s JOIN samples USING (sample_id)
                           JOIN questions q USING (question_id)
                           WHERE (q.reference_answer IS NOT NULL OR q.tests IS NOT NULL) AND NOT EXISTS (
                               SELECT 1 FROM latest_verdicts v WHERE v.sample_id = s.sample_id
                                 AND v.rule IN ('answer_match', 'code_tests') AND v.passed)""")[0][0]
    assert unverified == 0


def test_a_second_run_makes_no_engine_call(default_run):
    _, _, second = default_run
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert "engine calls: 0 requests (0 completions) in 0 batches, 0 model loads" in second.stdout + second.stderr
