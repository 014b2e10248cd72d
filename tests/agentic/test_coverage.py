"""Perturbation coverage and the overfit alarm per axis (pipeline/agentic/coverage.py): on the
choices plan_jobs really draws (no alarm, every configured value drawn, fixed axes never alarm),
on constructed records (an alarm over a lopsided axis; none below the minimum count or within
what the config explains; a configured value never drawn), and through a real store."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pipeline.agentic.coverage import (ALL, NONE, alarm_threshold, compute, configured_axes, notes,
                                       record_perturbations)
from pipeline.agentic.runner import plan_jobs
from pipeline.agentic.store import write_trajectories
from pipeline.agentic.tasks.db_questions import generate
from pipeline.store import Store
from schemas.config import AgenticConfig

CFG = AgenticConfig(enabled=True, call_syntaxes=["hermes", "xml_invoke", "pythonic"], transient_error_rate=0.3)


def planned(n_tasks: int, mode: str = "system_prompt", cfg: AgenticConfig = CFG):
    return plan_jobs(generate(seed=3, n=n_tasks), "m", cfg, mode)


def summary_of(tables, env: str = ALL) -> dict:
    return {r["axis"]: r for r in tables["perturbation_summary"].iter_rows(named=True) if r["environment"] == env}


def test_configured_axes_follow_the_config_and_the_mode():
    axes = configured_axes(CFG, "system_prompt")
    assert set(axes["call_syntax"]) == {"hermes", "xml_invoke", "pythonic"}
    assert set(axes["tool_docs"]) == {"json_schema", "python", "xml"} and axes["tool_order"] is None
    assert axes["transient_error"] == pytest.approx({NONE: 0.7, "call 1": 0.1, "call 2": 0.1, "call 3": 0.1})
    assert axes["think_prefill"] == {"<think>\\n": 1.0}
    template = configured_axes(CFG, "chat_template")
    assert template["call_syntax"] == {"hermes": 1.0} and "tool_docs" not in template
    no_errors = configured_axes(CFG.model_copy(update={"transient_error_rate": 0.0}), "chat_template")
    assert no_errors["transient_error"] == {NONE: 1.0}


def test_the_real_draws_cover_every_value_and_raise_no_alarm():
    jobs = planned(60)
    tables = compute([(j.rollout.task.environment, j.rollout.perturbations) for j in jobs],
                     configured_axes(CFG, "system_prompt"), "r1", CFG.alarm_share, CFG.alarm_min_samples)
    every = summary_of(tables)
    assert every["response_format"]["n_trajectories"] == len(jobs) >= 40
    for axis in ("response_format", "key_order", "extra_fields", "call_syntax", "tool_docs", "system_prompt",
                 "transient_error", "think_prefill"):
        assert every[axis]["covered"] is True and every[axis]["missing"] == [], axis
        assert every[axis]["alarm"] is False, (axis, every[axis])
    # The draw's counts are the table's, value by value.
    drawn = Counter(j.rollout.perturbations["response_format"] for j in jobs)
    values = tables["perturbation_values"].filter(axis="response_format", environment=ALL)
    assert dict(zip(values["value"], values["n"])) == dict(drawn)
    # Fixed by the config: one value, share 1, never an alarm.
    assert every["think_prefill"]["dominant_share"] == 1.0 and every["think_prefill"]["alarm_threshold"] == 1.0
    assert every["think_prefill"]["entropy"] == 0.0 and every["tool_order"]["covered"] is None
    assert 0.8 < every["response_format"]["entropy"] <= 1.0
    # "none" dominates the transient errors as configured (70%): that is no alarm.
    assert every["transient_error"]["dominant_value"] == NONE and every["transient_error"]["dominant_share"] > 0.5
    assert notes(tables["perturbation_summary"]) == []


def _records(axis_values: list[str], env: str = "shop_db@1") -> list[tuple[str, dict]]:
    return [(env, {"response_format": v}) for v in axis_values]


def test_a_lopsided_axis_alarms_with_enough_trajectories():
    configured = {"response_format": {"json": 0.25, "json_compact": 0.25, "yaml": 0.25, "table": 0.25}}
    skewed = ["json"] * 24 + ["yaml"] * 3 + ["table"] * 3  # 80% json of 30
    tables = compute(_records(skewed), configured, "r1", alarm_share=0.5, alarm_min=20)
    row = summary_of(tables)["response_format"]
    assert row["alarm"] is True and row["dominant_value"] == "json" and row["dominant_share"] == pytest.approx(0.8)
    assert row["covered"] is False and row["missing"] == ["json_compact"]
    assert summary_of(tables, "shop_db@1")["response_format"]["alarm"] is True  # per environment too
    said = notes(tables["perturbation_summary"])
    assert any("alarm: all/response_format: json 80% of 30" in n for n in said)
    assert any("response_format never drew json_compact" in n for n in said)
    # The same share over fewer trajectories than the minimum: no alarm.
    few = compute(_records(skewed[::3]), configured, "r1", alarm_share=0.5, alarm_min=20)
    assert summary_of(few)["response_format"]["alarm"] is False


def test_the_alarm_allows_for_what_the_config_explains():
    two = {"response_format": {"json": 0.5, "yaml": 0.5}}
    assert alarm_threshold(0.5, two["response_format"], 100) == pytest.approx(0.65)
    within = compute(_records(["json"] * 64 + ["yaml"] * 36), two, "r1", 0.5, 20)
    beyond = compute(_records(["json"] * 75 + ["yaml"] * 25), two, "r1", 0.5, 20)
    assert summary_of(within)["response_format"]["alarm"] is False
    assert summary_of(beyond)["response_format"]["alarm"] is True
    fixed = compute(_records(["json"] * 40), {"response_format": {"json": 1.0}}, "r1", 0.5, 20)
    assert summary_of(fixed)["response_format"]["alarm"] is False and summary_of(fixed)["response_format"]["covered"]


def test_stored_per_run_and_queryable(tmp_path: Path):
    jobs = planned(24)
    trajectories = []
    for j in jobs:
        j.rollout.advance("<think>I know it.</think>Final answer: 3")
        trajectories.append(j.rollout.trajectory())
    with Store(tmp_path / "c.duckdb") as store:
        write_trajectories(store, trajectories, run_id="r1")
        ids = [t.trajectory_id for t in trajectories]
        summary = record_perturbations(store, ids, CFG, "system_prompt", "r1")
        assert store.scalar("SELECT count(*) FROM perturbation_summary WHERE run_id = 'r1' AND environment = 'all'") \
            == summary.filter(environment=ALL).height == 9
        assert store.scalar("SELECT sum(n) FROM perturbation_values WHERE run_id = 'r1' AND environment = 'all' "
                            "AND axis = 'key_order'") == 24
        assert store.scalar("SELECT count(*) FROM perturbation_alarms") == 0
        # Again (a resumed run): the same rows, replaced, not doubled.
        record_perturbations(store, ids, CFG, "system_prompt", "r1")
        assert store.scalar("SELECT count(*) FROM perturbation_summary WHERE run_id = 'r1'") == summary.height
        # Judged against another config: its value never drawn is missing, a drawn one it lacks is not configured.
        other = CFG.model_copy(update={"call_syntaxes": ["hermes", "openai_json"]})
        record_perturbations(store, ids, other, "system_prompt", "r2")
        missing = store.scalar("SELECT missing FROM perturbation_summary WHERE run_id = 'r2' AND environment = 'all' "
                               "AND axis = 'call_syntax'")
        assert missing == ["openai_json"]
        assert store.scalar("SELECT configured FROM perturbation_values WHERE run_id = 'r2' AND environment = 'all' "
                            "AND axis = 'call_syntax' AND value = 'pythonic'") is False
