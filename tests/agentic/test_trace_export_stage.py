"""Rollouts on the real small engine through the difficulty and rebalance-export stages: pass@k per
task as the stored outcomes say, one trace_selections row per trajectory whose status agrees with
the verdicts, the trace shard set on disk; run again, the same selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.stage import RunState, StageContext
from pipeline.stages import agentic, difficulty, export, ingest
from pipeline.store import Store
from tests.agentic.test_agentic_stage import _config

pytestmark = pytest.mark.engine

# What the export must agree with: kept = correct and no failing verdict that counts.
_KEPT = """
SELECT t.trajectory_id, coalesce(t.correct, false) AND NOT EXISTS (
    SELECT 1 FROM latest_trajectory_verdicts v WHERE v.trajectory_id = t.trajectory_id AND NOT v.passed) AS kept
FROM trajectories t
"""


def test_rollouts_get_pass_at_k_and_a_trace_export(vllm_engine, tmp_path: Path):
    config = _config(tmp_path)
    config.agentic.rollouts_per_task = 2
    config.agentic.code_questions = 0
    out = tmp_path / "out"
    with Store(tmp_path / "c.duckdb") as store:
        ingest.run(StageContext(store, RunState("r1", config)))
        run = RunState("r1", config)
        run.provide_engine(vllm_engine)
        assert agentic.run(StageContext(store, run)).counts["new"] == 8  # (2 db + 2 math) x 2
        tasks = difficulty.run(StageContext(store, run)).counts["agentic_tasks"]
        verified = store.frame("SELECT task_id, avg(correct::INT) AS rate FROM trajectories "
                               "WHERE correct IS NOT NULL GROUP BY task_id")
        assert tasks == verified.height
        stored = dict(store.frame("SELECT task_id, pass_rate FROM task_difficulty").rows())
        assert stored == pytest.approx(dict(verified.rows()))

        report = export.run(StageContext(store, run, options={"out": str(out)})).counts["traces"]
        json.dumps(report)
        status = dict(store.frame("SELECT trajectory_id, status FROM trace_selections").rows())
        kept = dict(store.frame(_KEPT).rows())
        assert status.keys() == kept.keys() and len(status) == 8
        assert all((status[t] == "not_kept") == (not kept[t]) for t in kept)
        manifest = json.loads((out / report["export_id"] / "manifest.json").read_text())
        assert manifest["total_rows"] == report["rows"] == sum(s == "exported" for s in status.values())
        assert manifest["not_kept"] == report["not_kept"] == sum(not k for k in kept.values())
        # SmolLM2's template (the synthesis model's, the export's target) writes no tool calls: a
        # kept trajectory that made calls cannot round-trip and is recorded as rejected, not lost.
        called = set(store.frame("SELECT trajectory_id FROM trajectories WHERE steps > 0")["trajectory_id"])
        assert all(status[t] == "template_rejected" for t in called if kept[t])

        again = export.run(StageContext(store, RunState("r2", config), options={"out": str(out),
                                                                               "skip_unchanged": True}))
        assert again.counts["traces"]["status"].startswith("unchanged")
