"""pass@k difficulty and the trace export on stored trajectories (real DuckDB, real verifiers and
trace rules, the default model's real chat template): who is kept, the rebalance per environment,
the shards round-tripping through the template, rejects recorded with their reasons, and a rerun
exporting the same thing."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from pipeline.agentic.export import template_problems
from pipeline.difficulty.tasks import score_task_difficulty
from pipeline.export.traces import export_traces, render_choice, render_record
from pipeline.store import Store
from schemas import rows
from schemas.config import AgenticConfig, AgenticExportConfig, CurateConfig, ExportConfig
from tests.agentic.stored import calc, shop, shop_task, store_checked, without_reasoning_before_first_call


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "traces.duckdb") as s:
        yield s


def _config(tokenizer: Path | None = None, **export) -> CurateConfig:
    return CurateConfig(agentic=AgenticConfig(enabled=True, export=AgenticExportConfig(**export)),
                        export=ExportConfig(tokenizer=str(tokenizer) if tokenizer else None))


def _status(store: Store, export_id: str) -> dict[str, tuple[str, str]]:
    return {r[0]: (r[1], r[2]) for r in store.frame(
        "SELECT trajectory_id, status, reason FROM trace_selections WHERE export_id = ?", [export_id]).rows()}


def test_pass_at_k_per_task_and_each_trajectory_takes_its_task_s(store: Store):
    leeds = [shop(1), shop(2), shop(3, answer="12")]               # 2 of 3 right
    lyon = [shop(4, answer="3", task=shop_task("Lyon", 7)), shop(5, answer="4", task=shop_task("Lyon", 7))]
    mult = [calc(1), calc(2)]                                       # 2 of 2 right
    store_checked(store, leeds + lyon + mult)
    assert score_task_difficulty(store, "r1") == 3
    got = {r["task_id"]: r for r in store.frame("SELECT * FROM task_difficulty").iter_rows(named=True)}
    assert {t: (round(r["pass_rate"], 4), round(r["score"], 4), r["k"], r["pass_at_k"]) for t, r in got.items()} == {
        leeds[0].task_id: (0.6667, 0.3333, 3, True), lyon[0].task_id: (0.0, 1.0, 2, False),
        mult[0].task_id: (1.0, 0.0, 2, True)}
    assert got[leeds[0].task_id]["detail"] == "2/3 verified rollouts correct (3 stored)"
    by_trajectory = dict(store.frame("SELECT trajectory_id, difficulty FROM trajectory_difficulty").rows())
    assert {t.trajectory_id: round(by_trajectory[t.trajectory_id], 4) for t in leeds + mult} == {
        **{t.trajectory_id: 0.3333 for t in leeds}, **{t.trajectory_id: 0.0 for t in mult}}
    assert score_task_difficulty(store, "r2") == 0  # nothing new: nothing written
    store_checked(store, [shop(6, answer="7", task=shop_task("Lyon", 7))], run_id="r2")  # Lyon: 1 of 3
    assert score_task_difficulty(store, "r2") == 1
    assert store.scalar("SELECT pass_rate FROM task_difficulty WHERE task_id = ?", [lyon[0].task_id]) == 1 / 3


def test_selection_keeps_correct_trajectories_whose_every_verdict_passes(store: Store, tmp_path: Path):
    good, loop_free_but_silent, wrong = shop(1), shop(2, messages=without_reasoning_before_first_call()), shop(3, "12")
    judged_bad, judged_good = shop(4), calc(1)
    store_checked(store, [good, loop_free_but_silent, wrong, judged_bad, judged_good])
    # Another stage's verdicts on trajectories (a trajectory judge) count the same way.
    store.insert("trajectory_verdicts", pl.DataFrame([
        {"trajectory_id": t.trajectory_id, "stage": "judge", "rule": "step_reasoning", "rule_version": 1,
         "passed": ok, "score": float(ok), "reason": reason, "run_id": "r1", "created_at": datetime.now(timezone.utc),
         "config_hash": "h"} for t, ok, reason in [(judged_bad, False, "step 2 guesses"), (judged_good, True, "ok")]],
        schema=rows.TRAJECTORY_VERDICT))
    score_task_difficulty(store, "r1")
    manifest = export_traces(store, _config(max_per_task=4), "r1", tmp_path / "out")
    status = _status(store, manifest.export_id)
    assert len(status) == 5  # a row for every stored trajectory
    assert status[good.trajectory_id][0] == status[judged_good.trajectory_id][0] == "exported"
    assert status[loop_free_but_silent.trajectory_id] == (
        "not_kept", "not kept: call_without_reasoning (trace): turn 2: calls list_tables with 0 word(s) of "
                    "reasoning before it")
    assert status[judged_bad.trajectory_id] == ("not_kept", "not kept: step_reasoning (judge): step 2 guesses")
    assert status[wrong.trajectory_id][0] == "not_kept" and "outcome (outcome): '12' != '10'" in \
        status[wrong.trajectory_id][1]
    assert manifest.total_rows == 2 and manifest.not_kept == 3 and manifest.target is None
    # Disabling the rule in the config stops it counting.
    config = _config(max_per_task=4)
    config.agentic.disabled_rules = ["call_without_reasoning"]
    again = export_traces(store, config, "r2", tmp_path / "out")
    assert _status(store, again.export_id)[loop_free_but_silent.trajectory_id][0] == "exported"


def test_rebalance_even_over_environments_best_effort(store: Store, tmp_path: Path):
    shops = [shop(s) for s in range(1, 5)] + [shop(9, task=shop_task("Lyon", 10))]  # 5 kept, two tasks
    store_checked(store, shops + [calc(1)])                                         # 1 kept
    score_task_difficulty(store, "r1")
    manifest = export_traces(store, _config(), "r1", tmp_path / "out")
    # Kept: shop_db 5, but at most 2 of the Leeds task's 4 count (max_per_task): 3; calculator 1. The
    # even mix of 4 is 2 + 2; calculator has 1 (best effort: the mix holds, the gap is reported).
    assert manifest.counts_by_environment == {"calculator@1": 1, "shop_db@1": 2}
    assert [(s.domain, s.wanted, s.missing) for s in manifest.shortfall] == [("calculator@1", 2, 1)]
    status = _status(store, manifest.export_id)
    assert sorted(s for s, _ in status.values()) == ["exported"] * 3 + ["not_chosen"] * 3
    assert sum(status[s.trajectory_id][0] == "exported" for s in shops[:4]) <= 2
    assert all(r.startswith("kept, not chosen: ") for s, r in status.values() if s == "not_chosen")
    only_shop = export_traces(store, _config(environment_targets={"shop_db@1": 1.0}), "r2", tmp_path / "out")
    assert only_shop.counts_by_environment == {"shop_db@1": 3}  # all it may take: 2 Leeds, 1 Lyon
    assert sum(_status(store, only_shop.export_id)[s.trajectory_id][0] == "exported" for s in shops[:4]) == 2
    assert _status(store, only_shop.export_id)[calc(1).trajectory_id] == (
        "not_chosen", "kept, not chosen: calculator@1 has no share in agentic.export.environment_targets")


def test_shards_round_trip_through_the_target_template_and_rerun_is_the_same(store: Store, tmp_path: Path,
                                                                              qwen_target):
    folder, tokenizer = qwen_target
    trajectories = {t.trajectory_id: t for t in [shop(1), shop(2), calc(1), calc(2)]}
    store_checked(store, list(trajectories.values()))
    score_task_difficulty(store, "r1")
    config = _config(folder, rename_rate=0.5)
    first = export_traces(store, config, "r1", tmp_path / "out")
    assert first.total_rows == 4 and first.rejected == {} and first.target["tokenizer"] == str(folder)
    assert set(first.counts_by_render) == {"canonical", "renamed"} and sum(first.counts_by_render.values()) == 4
    shard = tmp_path / "out" / first.export_id / first.shards[0].file
    lines = [json.loads(x) for x in shard.read_text().splitlines()]
    renders = dict(store.frame("SELECT trajectory_id, render FROM trace_selections WHERE export_id = ?",
                               [first.export_id]).rows())
    for line in lines:
        assert template_problems({"messages": line["messages"], "tools": line["tools"]}, tokenizer, 4096) == []
        assert json.loads(renders[line["id"]]) == line["render"]  # what was applied is what is stored
        # drawn from the trajectory's seed
        assert line["render"] == render_record(render_choice(trajectories[line["id"]], 0.5))
        names = [t["function"]["name"] for t in line["tools"]]
        called = {c["function"]["name"] for m in line["messages"] for c in m.get("tool_calls", [])}
        if line["render"]["renamed"]:
            assert names == [line["render"]["tool_names"][n] for n in line["render"]["tool_order"]]
            assert called <= set(line["render"]["tool_names"].values())
        else:
            assert names == line["render"]["tool_order"]
        reasoning = [m for m in line["messages"] if m["role"] == "assistant"]
        assert all(m["reasoning_content"] == m["reasoning"] and m["reasoning"] for m in reasoning)  # interleaved
    assert [x["environment"] for x in lines] == sorted(x["environment"] for x in lines)

    second = export_traces(store, config, "r2", tmp_path / "out")  # a rerun: same selection, same bytes
    assert [(f.file, f.sha256) for f in second.shards] == [(f.file, f.sha256) for f in first.shards]
    assert second.selection_digest == first.selection_digest
    picked = "SELECT trajectory_id, status, reason, render FROM trace_selections WHERE export_id = ? ORDER BY 1"
    assert store.frame(picked, [first.export_id]).equals(store.frame(picked, [second.export_id]))
    assert export_traces(store, config, "r3", tmp_path / "out", skip_unchanged=True) is None
    assert store.count("trace_exports") == 2 and store.scalar(
        "SELECT count(*) FROM shards WHERE export_id LIKE 'traces-%'") == 2


def test_template_failures_are_recorded_not_dropped(store: Store, tmp_path: Path, qwen_target):
    folder, _ = qwen_target
    store_checked(store, [shop(1), calc(1)])
    config = _config(folder)
    config.export.max_seq_len = 64  # a tool-using record is longer
    manifest = export_traces(store, config, "r1", tmp_path / "out")
    assert manifest.total_rows == 0 and manifest.rejected == {"too long": 2} and manifest.shards == []
    rejected = store.frame("SELECT status, reason, render FROM trace_selections").rows()
    assert [(s, r.split(":")[0], r.split(": ")[1]) for s, r, _ in rejected] == 2 * [
        ("template_rejected", "chat template", "too long")]
    assert all(json.loads(render)["seed"] for _, _, render in rejected)  # what it was rendered with


def test_history_policy_and_reasoning_placement_come_from_the_config(store: Store, tmp_path: Path, qwen_target):
    folder, tokenizer = qwen_target
    store_checked(store, [calc(1)])
    manifest = export_traces(store, _config(folder, reasoning_in="think_tags"), "r1", tmp_path / "out")
    line = json.loads((tmp_path / "out" / manifest.export_id / manifest.shards[0].file).read_text())
    assert line["reasoning_in"] == manifest.reasoning_in == "think_tags"
    assistant = [m for m in line["messages"] if m["role"] == "assistant"]
    assert all(m["content"].startswith("<think>\n") and "reasoning" not in m for m in assistant)
    assert template_problems({"messages": line["messages"], "tools": line["tools"]}, tokenizer, 4096) == []


def test_environment_targets_are_checked():
    with pytest.raises(ValueError, match="name@version"):
        AgenticExportConfig(environment_targets={"shop_db": 1.0})
    with pytest.raises(ValueError, match="sum to 1"):
        AgenticExportConfig(environment_targets={"shop_db@1": 0.5})
