"""Store a judge rule's evaluation (judges/eval.py) in judge_evals, where calibration gates
(pipeline.stages.judge.calibration_gap) read it. Kept out of judges/, which must not import
the store."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import polars as pl

from judges.eval import EvalResult
from pipeline.store import Store, now
from schemas.judge_rule import JudgeRule


def store_eval(store: Store, rule: JudgeRule, result: EvalResult, model: str, labels_path: str | Path) -> str:
    """Record one evaluation in judge_evals (what calibration gates read); returns its eval_id."""
    if (result.rule, result.rule_version) != (rule.name, rule.version):
        raise ValueError(f"result is for {result.rule} v{result.rule_version}, not {rule.name} v{rule.version}")
    created = now()
    eval_id = created.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    store.insert("judge_evals", pl.DataFrame({
        "eval_id": [eval_id], "rule": rule.name, "rule_version": rule.version, "model": model,
        "labels": str(labels_path), "kind": result.kind, "mode": result.mode,
        "position_consistency": [result.position_consistency], "n_items": result.n_items, "n_judged": result.n_judged,
        "errors": result.errors, "ties": [result.ties], "agreement": [result.agreement],
        "accuracy": [result.accuracy], "kappa": [result.kappa], "details": json.dumps(result.details),
        "created_at": created,
    }, schema_overrides={"rule_version": pl.Int32, "n_items": pl.Int32, "n_judged": pl.Int32, "errors": pl.Int32,
                         "ties": pl.Int32, "agreement": pl.Float64, "accuracy": pl.Float64, "kappa": pl.Float64,
                         "position_consistency": pl.Float64,
                         "created_at": pl.Datetime("us", "UTC")}))
    return eval_id
