"""The agentic stage on the real small engine: tasks from the pools (math with the calculator,
code with its asserts) and generated shop_db questions, rolled out, verified, stored with their
trace-rule verdicts; run again, it rolls out nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.models import SMALL_MODEL
from pipeline.stage import RunState, StageContext
from pipeline.stages import agentic, ingest
from pipeline.store import Store
from schemas.config import AgenticConfig, CurateConfig, EngineConfig, FieldMap, PoolConfig

pytestmark = pytest.mark.engine


def _config(tmp_path: Path) -> CurateConfig:
    math = tmp_path / "math.jsonl"
    math.write_text("".join(json.dumps(q) + "\n" for q in [
        {"question": "What is 17 * 23?", "answer": "391"},
        {"question": "What is 2 to the power 12?", "answer": "4096"}]))
    code = tmp_path / "code.jsonl"
    code.write_text(json.dumps({"question": "Write a function double(x) that returns 2 * x.",
                                "tests": ["assert double(4) == 8", "assert double(0) == 0"]}) + "\n")
    return CurateConfig(
        pools=[PoolConfig(path=str(math), domain="math", answer_type="math"),
               PoolConfig(path=str(code), domain="code", answer_type="code",
                          fields=FieldMap(answer=None, tests="tests"))],
        engine=EngineConfig(model=SMALL_MODEL),
        agentic=AgenticConfig(enabled=True, db_questions=2, math_questions=2, code_questions=1, max_steps=2,
                              max_tokens=32))


def test_the_stage_rolls_out_verifies_stores_and_resumes(vllm_engine, tmp_path: Path):
    config = _config(tmp_path)
    with Store(tmp_path / "c.duckdb") as store:
        assert ingest.run(StageContext(store, RunState("r1", config))).counts["new"] == 3
        run = RunState("r1", config)
        run.provide_engine(vllm_engine)
        report = agentic.run(StageContext(store, run)).counts
        json.dumps(report)  # the run records its counts as JSON
        assert report["planned"] == 5 and report["new"] == 5 and report["prompt_mode"] == "system_prompt"
        envs = report["environments"]
        assert {e: v["trajectories"] for e, v in envs.items()} == {"calculator@1": 2, "python_exec@1": 1,
                                                                   "shop_db@1": 2}
        assert report["driver"]["turns"] >= 5 and len(report["trace_rules"]) == 9
        assert all(r["checked"] == 5 for r in report["trace_rules"].values())
        verified = store.scalar("SELECT count(*) FROM trajectories WHERE correct IS NOT NULL")
        assert verified == sum(v["verified"] for v in envs.values()) == store.scalar(
            "SELECT count(*) FROM trajectory_verdicts WHERE rule = 'outcome'")
        assert store.scalar("SELECT count(DISTINCT question_id) FROM trajectories") == 3  # generated ones: NULL

        again = agentic.run(StageContext(store, RunState("r2", config))).counts
        assert again["planned"] == 5 and again["already_stored"] == 5 and again["new"] == 0
        assert "driver" not in again and all(r["checked"] == 0 for r in again["trace_rules"].values())


def test_the_stage_is_off_by_default(tmp_path: Path):
    with Store(tmp_path / "c.duckdb") as store:
        assert agentic.run(StageContext(store, RunState("r1", CurateConfig()))).counts == {"enabled": False}
