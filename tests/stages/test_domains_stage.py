"""The domains stage's adoption of kNN answers (pipeline/stages/domains.py) on a real DuckDB file."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.stages.domains import adopt_domains
from pipeline.store import Store, now
from tests.stages.test_store import question_frame


def test_confident_knn_answers_replace_other_and_nothing_else(tmp_path: Path):
    with Store(tmp_path / "c.duckdb") as store:
        store.insert("questions", question_frame(("q1", "other"), ("q2", "other"), ("q3", "math"), ("q4", "other")))
        store.replace("question_domains", pl.DataFrame([
            {"question_id": q, "method": m, "version": 1, "domain": d, "subdomain": sub, "confidence": c,
             "detail": "", "run_id": "run-1", "created_at": now()}
            for q, m, d, sub, c in [("q1", "knn", "science", "physics", 0.9), ("q2", "knn", "code", None, 0.4),
                                    ("q3", "knn", "logic", None, 1.0), ("q4", "knn", "other", None, 1.0)]
        ], schema_overrides={"version": pl.Int32}))
        assert adopt_domains(store, ["q1", "q2", "q3", "q4"], min_confidence=0.6) == 1
        domains = dict(store.frame("SELECT question_id, domain || '/' || coalesce(subdomain, '-') FROM questions").rows())
        assert domains == {"q1": "science/physics", "q2": "other/-", "q3": "math/-", "q4": "other/-"}
        assert adopt_domains(store, ["q1", "q2"], min_confidence=0.6) == 0  # q1 is no longer "other"
