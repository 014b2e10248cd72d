"""Style metrics (pipeline/stages/style_metrics.py): entropy, the overfit alarm, compliance per
style and model, written to the real DuckDB store and read back in SQL."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from pipeline.stages.style_metrics import compute, normalized_entropy, record_style_metrics
from pipeline.store import Store
from schemas.config import SynthesisConfig
from tests.stages.test_store import question_frame, sample_frame, verdicts

ANSWERS = {
    "numbered_steps": "1. Add 48 and 24.\n2. That gives 72.",
    "boxed": "So the total is \\boxed{72}.",
    "prose": "She sold 48 in April and 24 in May. That is 72 in all.",
}


def test_normalized_entropy():
    assert normalized_entropy([5, 5]) == pytest.approx(1.0)
    assert normalized_entropy([10, 0, 0]) == 0.0
    assert normalized_entropy([]) is None
    assert normalized_entropy([2, 1, 1]) == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)) / math.log(3))


def frame(rows: list[tuple[str, str, str, str, bool, bool]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["domain", "model", "requested", "realized", "compliant", "kept"], orient="row")


def test_alarm_fires_when_one_style_dominates_a_domain():
    rows = ([("math", "m", "boxed", "prose", False, True)] * 8 + [("math", "m", "prose", "prose", True, True)] * 8
            + [("math", "m", "bullets", "bullets", True, False)] * 4 + [("code", "m", "bullets", "bullets", True, True)] * 20)
    tables = compute(frame(rows), "run-1", alarm_share=0.5, alarm_min=10)
    summary = {(r["scope"], r["domain"]): r for r in tables["style_summary"].iter_rows(named=True)}
    math_all = summary[("synthesized", "math")]
    assert (math_all["n_samples"], math_all["dominant_style"], math_all["dominant_share"]) == (20, "prose", 0.8)
    assert math_all["alarm"] and math_all["compliance"] == pytest.approx(12 / 20)
    assert summary[("synthesized", "code")]["alarm"]  # one style only: 100%
    assert summary[("synthesized", "code")]["entropy"] == 0.0
    assert summary[("kept", "math")]["n_samples"] == 16
    # Below the minimum sample count nothing fires.
    quiet = compute(frame(rows[:8]), "run-1", alarm_share=0.5, alarm_min=10)["style_summary"]
    assert not quiet["alarm"].any()
    metrics = tables["style_metrics"].filter((pl.col("scope") == "synthesized") & (pl.col("domain") == "math"))
    by_style = {r["style"]: (r["requested"], r["realized"], r["compliant"]) for r in metrics.iter_rows(named=True)}
    assert by_style == {"boxed": (8, 0, 0), "prose": (8, 16, 8), "bullets": (4, 4, 4)}


def test_metrics_are_stored_per_run_and_queryable(tmp_path: Path):
    cfg = SynthesisConfig(mix={"alarm_share": 0.6, "alarm_min_samples": 4})
    with Store(tmp_path / "curate.duckdb") as store:
        store.insert("questions", question_frame(("q1", "math"), ("q2", "math"), ("q3", "code")))
        specs = [(f"s{i}", q) for i, q in enumerate(["q1", "q1", "q2", "q2", "q3"])]
        samples = sample_frame(*specs).with_columns(
            requested_format=pl.Series(["boxed", "prose", "boxed", "numbered_steps", "prose"]),
            answer=pl.Series([ANSWERS["prose"], ANSWERS["prose"], ANSWERS["prose"], ANSWERS["numbered_steps"],
                              ANSWERS["boxed"]]),
            model=pl.Series(["m1", "m1", "m2", "m2", "m1"]))
        store.insert("samples", samples)
        store.insert("verdicts", verdicts([s for s, _ in specs], [True, True, True, False, True]))
        report = record_style_metrics(store, cfg, "run-9", ["q1", "q2", "q3"], "g")
        assert report.samples == 5 and report.compliance == pytest.approx(2 / 5)
        # 60% is not above 60%: only the math domain (3 of 4 prose) and the kept set (3 of 4) fire.
        assert report.alarms == ["synthesized/math: prose 75% of 4", "kept/all: prose 75% of 4"]
        alarm_rows = store.frame("SELECT scope, domain, dominant_style, dominant_share FROM style_alarms "
                                 "WHERE run_id = 'run-9' ORDER BY scope, domain").rows()
        assert ("synthesized", "math", "prose", 0.75) in alarm_rows
        assert ("kept", "math", "prose", 1.0) not in alarm_rows  # 3 kept math samples: below the minimum
        rates = dict(((m, s), r) for m, s, r in store.frame(
            "SELECT model, style, rate FROM style_compliance WHERE run_id = 'run-9'").rows())
        assert rates == {("m1", "boxed"): 0.0, ("m1", "prose"): 0.5, ("m2", "boxed"): 0.0,
                         ("m2", "numbered_steps"): 1.0}
        # A sample under another generation config is not this run's.
        assert store.scalar("SELECT n_samples FROM style_summary WHERE run_id = 'run-9' AND scope = 'synthesized' "
                            "AND domain = 'all'") == 5
        assert record_style_metrics(store, cfg, "run-10", ["q1"], "other-hash").samples == 0


def test_unrecognized_answers_are_counted_apart_and_never_raise_the_alarm():
    rows = [("code", "m", "code_first", "unknown", False, False)] * 15 + [("code", "m", "bullets", "bullets", True, True)] * 5
    row = compute(frame(rows), "run-1", alarm_share=0.5, alarm_min=10)["style_summary"].row(1, named=True)
    assert (row["domain"], row["n_samples"], row["n_unknown"], row["dominant_style"]) == ("code", 20, 15, "bullets")
    assert not row["alarm"]  # 5 recognized answers: below the minimum; "unknown" is not a style
