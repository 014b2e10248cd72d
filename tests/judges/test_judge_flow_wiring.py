"""How the judge stage wires its rules (pipeline/stages/judge.py run), with run_judge replaced:
the run's token budget passes from rule to rule, refusals and budget stops are noted, a rule's
own engine is used. Orchestration unit tests; the real flow runs in tests/flows/test_e2e.py."""

from __future__ import annotations

from pathlib import Path

import pipeline.stages.judge as judge_stage
from pipeline.stage import RunState, StageContext
from pipeline.stages.judge import JudgeReport
from pipeline.store import Store
from schemas.config import CurateConfig, EngineConfig


class FakeEngineForOrchestrationTest:
    model_name = "fake-orchestration"


def _judge(tmp_path: Path, config: CurateConfig, engines: list | None = None, **options):
    run = RunState("run-1", config)
    run.provide_engine(FakeEngineForOrchestrationTest())
    for engine_config, engine in engines or []:
        run.provide_engine(engine, engine_config)
    with Store(tmp_path / "x.duckdb") as store:
        return judge_stage.run(StageContext(store, run, options=options))


def _rules(tmp_path: Path, *names: str) -> str:
    for name in names:
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\nversion: 1\ndescription: d\nscale: {{anchors: {{1: bad, 5: good}}}}\nthreshold: 3\n"
            "prompt: '{{ open }}answer\n{{ answer }}\n{{ close }}answer'\n")
    return str(tmp_path)


def test_token_budget_passes_from_rule_to_rule_and_refusals_are_said(monkeypatch, tmp_path: Path):
    seen = []
    reports = {"a": JudgeReport("a", 1, judged=3, prompt_tokens=250, completion_tokens=50),
               "b": JudgeReport("b", 1, refused="needs calibration: no eval of b v1 yet"),
               "c": JudgeReport("c", 2, judged=1, skipped_budget=4, prompt_tokens=90, completion_tokens=10)}

    def run_judge(store, rule, engine, run_id, *, budget, **kw):
        seen.append((rule.name, budget.limit))
        return reports[rule.name]

    monkeypatch.setattr(judge_stage, "run_judge", run_judge)
    config = CurateConfig(judges={"rules": ["a", "b", "c"], "token_budget": 400,
                                  "rules_dir": _rules(tmp_path, "a", "b", "c")})
    report = _judge(tmp_path, config)
    assert seen == [("a", 400), ("b", 100), ("c", 100)]
    assert report.counts["b"]["refused"].startswith("needs calibration") and report.counts["c"]["skipped_budget"] == 4
    assert any("b not run: needs calibration" in m for m in report.notes)
    assert any("c: token budget reached, 4 samples left" in m and "judge_pending" in m for m in report.notes)


def test_no_budget_means_no_limit(monkeypatch, tmp_path: Path):
    seen = []
    monkeypatch.setattr(judge_stage, "run_judge", lambda store, rule, engine, run_id, *, budget, **kw:
                        seen.append(budget.limit) or JudgeReport(rule.name, 1, prompt_tokens=10**6))
    _judge(tmp_path, CurateConfig(judges={"rules": ["a", "b"], "rules_dir": _rules(tmp_path, "a", "b")}))
    assert seen == [None, None]


def test_a_rule_with_its_own_engine_is_judged_by_it(monkeypatch, tmp_path: Path):
    (tmp_path / "big_judge.yaml").write_text(
        "name: big_judge\nversion: 1\ndescription: d\nscale: {anchors: {1: bad, 5: good}}\nthreshold: 3\n"
        "engine: {kind: openai, base_url: 'http://127.0.0.1:9/v1', model: judge-70b}\n"
        "prompt: '{{ open }}answer\n{{ answer }}\n{{ close }}answer'\n")
    used = []
    monkeypatch.setattr(judge_stage, "run_judge", lambda store, rule, engine, run_id, **kw: used.append(engine) or
                        JudgeReport(rule.name, rule.version))
    big = EngineConfig(kind="openai", base_url="http://127.0.0.1:9/v1", model="judge-70b")
    config = CurateConfig(judges={"rules": ["big_judge", "logical_completeness"], "rules_dir": str(tmp_path)})
    _judge(tmp_path, config, engines=[(big, "rule-engine")])
    # The rule's own engine (from the run's engines, made once per engine config); a rule
    # without one uses the run's.
    assert used[0] == "rule-engine" and isinstance(used[1], FakeEngineForOrchestrationTest)
