"""How the flow wires judge rules (flows/curate_flow.py), with the stage replaced: the run's
token budget passes from rule to rule, refusals are reported, a rule's own engine is used.
Orchestration unit tests; the real flow runs in tests/test_e2e.py."""

from __future__ import annotations

from pathlib import Path

import flows.curate_flow as cf
import flows.tasks as ft
from pipeline.stages.judge import JudgeReport
from schemas.config import CurateConfig, EngineConfig


class FakeEngineForOrchestrationTest:
    model_name = "fake-orchestration"


def test_token_budget_passes_from_rule_to_rule_and_refusals_are_said(monkeypatch):
    seen, said = [], []
    reports = {"a": JudgeReport("a", 1, judged=3, prompt_tokens=250, completion_tokens=50),
               "b": JudgeReport("b", 1, refused="needs calibration: no eval of b v1 yet"),
               "c": JudgeReport("c", 2, judged=1, skipped_budget=4, prompt_tokens=90, completion_tokens=10)}

    def judge_task(db, engine, config, run_id, name, tokens_left, limit=None):
        seen.append((name, tokens_left))
        return reports[name]

    monkeypatch.setattr(cf, "judge_task", judge_task)
    token = cf.say_var.set(said.append)
    try:
        config = CurateConfig(judges={"rules": ["a", "b", "c"], "token_budget": 400})
        out = cf._judge_all("db", FakeEngineForOrchestrationTest(), config, "run-1")
    finally:
        cf.say_var.reset(token)
    assert seen == [("a", 400), ("b", 100), ("c", 100)]
    assert out["b"]["refused"].startswith("needs calibration") and out["c"]["skipped_budget"] == 4
    assert any("b not run: needs calibration" in m for m in said)
    assert any("c: token budget reached, 4 samples left" in m and "judge_pending" in m for m in said)


def test_no_budget_means_no_limit(monkeypatch):
    seen = []
    monkeypatch.setattr(cf, "judge_task", lambda db, e, c, r, name, left, limit=None: seen.append(left) or
                        JudgeReport(name, 1, prompt_tokens=10**6))
    cf._judge_all("db", FakeEngineForOrchestrationTest(), CurateConfig(judges={"rules": ["a", "b"]}), "run-1")
    assert seen == [None, None]


def test_a_rule_with_its_own_engine_is_judged_by_it(monkeypatch, tmp_path: Path):
    (tmp_path / "big_judge.yaml").write_text(
        "name: big_judge\nversion: 1\ndescription: d\nscale: {anchors: {1: bad, 5: good}}\nthreshold: 3\n"
        "engine: {kind: openai, base_url: 'http://127.0.0.1:9/v1', model: judge-70b}\n"
        "prompt: '{{ open }}answer\n{{ answer }}\n{{ close }}answer'\n")
    run_engine, built, used = FakeEngineForOrchestrationTest(), [], []
    monkeypatch.setattr(ft, "make_engine", lambda config, announce=None: built.append(config) or "rule-engine")
    monkeypatch.setattr(ft, "run_judge", lambda store, rule, engine, run_id, **kw: used.append(engine) or
                        JudgeReport(rule.name, rule.version))
    config = CurateConfig(judges={"rules": ["big_judge"], "rules_dir": str(tmp_path)})
    ft.judge_task.fn(str(tmp_path / "x.duckdb"), run_engine, config, "run-1", "big_judge", None)
    assert built == [EngineConfig(kind="openai", base_url="http://127.0.0.1:9/v1", model="judge-70b")]
    assert used == ["rule-engine"]
    # A rule without an engine uses the run's.
    ft.judge_task.fn(str(tmp_path / "x.duckdb"), run_engine, config.model_copy(
        update={"judges": config.judges.model_copy(update={"rules_dir": None})}), "run-1", "logical_completeness", None)
    assert used[-1] is run_engine
