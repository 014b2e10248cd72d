"""A store for the report's tests, without a model: the misalignment loop's store (real GSM8K
questions answered with their reference solutions, planted bad samples, the real cheap rules'
and answer_match's verdicts), then the real style-metrics, difficulty and rebalance-export stages
of run-0, as a run would leave it (the samples taken as the current generation config's). Half the questions get a pool level (as MATH's `level` gives)
so the difficulty-vs-level figures have rows."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.config_loading import load_run_config
from pipeline.stage import RunState, StageContext
from pipeline.stages import difficulty, export, style_metrics
from pipeline.stages.synthesize import gen_config_hash
from pipeline.store import Store, now
from tests.misalignment.loop_store import build as build_loop_store

RUN = "run-0"


def build(path: Path, out: Path) -> Path:
    build_loop_store(path)
    config = load_run_config(None)
    config.rebalance.targets = {"math": 1.0}
    with Store(path) as store:
        store.insert("runs", pl.DataFrame([{
            "run_id": RUN, "started_at": now(), "finished_at": now(), "status": "finished",
            "config_hash": config.config_hash(), "config": json.dumps(config.model_dump(mode="json")),
            "counts": "{}", "error": None}]))
        # the samples as the current generation config's (the style metrics read those)
        store.con.execute("UPDATE samples SET gen_config_hash = ?",
                          [gen_config_hash(config.synthesis, config.engine.model)])
        store.con.execute("UPDATE questions SET level = (CAST(right(question_id, 2) AS INTEGER) % 5) / 4 "
                          "WHERE CAST(right(question_id, 1) AS INTEGER) % 2 = 0")
        ctx = StageContext(store, RunState(RUN, config), options={"out": str(out)})
        for stage in (style_metrics, difficulty, export):
            stage.run(ctx)
    return path
