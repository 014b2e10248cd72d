"""Trace export: kept agentic trajectories rebalanced per environment, rendered as chat records,
checked against the target chat template, and written as a traces-*.jsonl shard set.

    manifest = export_traces(store, config, run_id, Path("out"))   # None: skip_unchanged and unchanged

Kept: the outcome is correct and every verdict that counts (latest_trajectory_verdicts: per
trajectory and rule, the newest) passes: trace rules, a trajectory judge, anything written there;
rules in agentic.disabled_rules are not counted. Rebalance: the sample rebalance
(pipeline/export/rebalance.py) with environments as domains and tasks as questions, best effort,
agentic.export.environment_targets (default even over the environments that have trajectories),
at most max_per_task per task, rebalance.prefer over the task's pass@k difficulty. Each chosen
trajectory gets its render-time perturbations (RenderChoice: renamed tools, tool order) from its
seed, becomes a chat record (pipeline/agentic/export.py chat_record: the history policy and
reasoning placement of agentic.export), and is checked with the export's target tokenizer
(template_problems); a record that fails is recorded with its problems and the rebalance runs
again without it. Every stored trajectory gets a trace_selections row: exported, not_kept,
not_chosen or template_rejected, with the reason, so "why not?" is one SQL query.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline.agentic.export import chat_record, template_problems
from pipeline.agentic.perturb.render import RenderChoice
from pipeline.agentic.runner import OUTCOME_RULE
from pipeline.agentic.store import read_trajectories
from pipeline.export.rebalance import rebalance
from pipeline.export.trace_shards import write_trace_shards
from pipeline.hashing import seed_from
from pipeline.store import Store, now
from schemas import rows
from schemas.agentic import Trajectory
from schemas.config import CurateConfig, RebalanceConfig
from schemas.shard import ShortfallRow, TraceManifest

# Every stored trajectory with its difficulty and the verdicts that count against it.
_CANDIDATES = """
WITH failing AS (
    SELECT trajectory_id, list({'rule': rule, 'stage': stage, 'reason': reason} ORDER BY rule) AS failed
    FROM latest_trajectory_verdicts
    WHERE NOT passed AND rule NOT IN (SELECT rule FROM _disabled)
    GROUP BY trajectory_id
)
SELECT t.trajectory_id, t.task_id, t.environment, t.correct, t.outcome, t.run_id, d.difficulty, f.failed
FROM trajectories t LEFT JOIN trajectory_difficulty d ON d.trajectory_id = t.trajectory_id
LEFT JOIN failing f ON f.trajectory_id = t.trajectory_id
ORDER BY t.environment, t.trajectory_id
"""
LINE_COLUMNS = ["id", "task_id", "question_id", "environment", "domain", "source", "difficulty", "model", "seed",
                "history", "reasoning_in", "render", "perturbations", "messages", "tools"]


def not_kept_reason(correct: bool | None, outcome: str, failed: list[dict] | None) -> str | None:
    """Why a trajectory is not kept, or None when it is."""
    failed = failed or []
    parts = []
    if correct is None:
        parts.append(f"outcome not verified ({outcome})")
    elif not correct and not any(f["rule"] == OUTCOME_RULE for f in failed):
        parts.append(f"outcome wrong ({outcome})")
    parts += [f"{f['rule']} ({f['stage']}): {f['reason'] or 'failed'}" for f in failed]
    return "; ".join(parts) or None


def render_choice(trajectory: Trajectory, rename_rate: float) -> RenderChoice:
    """The render-time perturbations of a trajectory, drawn from its seed (apart from the draws
    the rollout made from the same seed)."""
    return RenderChoice.draw(seed_from("export_render", trajectory.task_id, trajectory.seed), trajectory.tools,
                             rename_rate)


def render_record(choice: RenderChoice) -> dict:
    """What a chat record applies of the choice (the target template writes tool docs and calls)."""
    return {"seed": choice.seed, "renamed": choice.rename is not None, "tool_order": choice.tool_order,
            "tool_names": choice.rename.tools if choice.rename else None,
            "param_names": choice.rename.params if choice.rename else None}


def _problem_kind(problem: str) -> str:
    return re.sub(r"^message \d+: ", "", problem).split(":")[0]


@dataclass
class _Rendered:
    line: dict | None
    render: dict
    problems: list[str] = field(default_factory=list)


def _render(trajectories: list[Trajectory], config: CurateConfig, tokenizer) -> dict[str, _Rendered]:
    ex = config.agentic.export
    out = {}
    for t in trajectories:
        choice = render_choice(t, ex.rename_rate)
        try:
            record = chat_record(t, history=ex.history, reasoning_in=ex.reasoning_in, render=choice)
        except ValueError as exc:  # an unparsable call (the unparsable_call rule fails such traces)
            out[t.trajectory_id] = _Rendered(None, render_record(choice), [str(exc)])
            continue
        problems = template_problems(record, tokenizer, config.export.max_seq_len) if tokenizer is not None else []
        line = {"id": t.trajectory_id, "task_id": t.task_id, "question_id": t.task.question_id,
                "environment": t.environment, "domain": t.task.domain, "source": t.task.source, "difficulty": None,
                "model": t.model, "seed": t.seed, "history": ex.history, "reasoning_in": ex.reasoning_in,
                "render": render_record(choice), "perturbations": t.perturbations,
                "messages": record["messages"], "tools": record["tools"]}
        out[t.trajectory_id] = _Rendered(line, render_record(choice), problems)
    return out


@dataclass
class TraceSelection:
    rows: pl.DataFrame                 # trace_selections rows without export_id, every stored trajectory
    lines: list[dict]                  # the exported records in shard order (environment, trajectory_id)
    shortfall: list[ShortfallRow]
    rejected: dict[str, int]           # problem kind -> trajectories
    run_ids: list[str]


def select_traces(store: Store, config: CurateConfig, tokenizer=None) -> TraceSelection:
    """Choose and render the trajectories to export; tokenizer: the target's HF tokenizer (None: no
    chat-template checks)."""
    ex = config.agentic.export
    disabled = pl.DataFrame({"rule": config.agentic.disabled_rules}, schema={"rule": pl.String})
    candidates = store.frame(_CANDIDATES, _disabled=disabled).with_columns(
        why_not=pl.struct("correct", "outcome", "failed").map_elements(
            lambda r: not_kept_reason(r["correct"], r["outcome"], r["failed"]), return_dtype=pl.String))
    kept = candidates.filter(pl.col("why_not").is_null())
    environments = sorted(set(candidates["environment"]))
    targets = ex.environment_targets or {e: 1 / len(environments) for e in environments}
    rendered: dict[str, _Rendered] = {}
    rejected: set[str] = set()
    chosen = pl.DataFrame(schema={"sample_id": pl.String, "domain": pl.String, "difficulty": pl.Float64,
                                  "reason": pl.String})
    shortfall, quota = [], {}
    if targets:
        reb = config.rebalance
        cfg = RebalanceConfig(targets=targets, mode="best_effort", max_samples=ex.max_traces,
                              max_per_question=ex.max_per_task, seed=reb.seed, prefer=reb.prefer,
                              power_law_alpha=reb.power_law_alpha, pass_rate_band=reb.pass_rate_band,
                              band_edges=reb.band_edges)
        tried = dict(candidates.group_by("environment").agg(pl.col("task_id").n_unique()).iter_rows())
        pool = kept.select(sample_id="trajectory_id", question_id="task_id", domain="environment",
                           difficulty="difficulty", pass_difficulty="difficulty")
        # Rebalance, check what is newly chosen, drop what fails, again: each round removes at
        # least one trajectory or ends, so quotas are filled with records that pass.
        while True:
            selection = rebalance(pool.filter(~pl.col("sample_id").is_in(list(rejected))), cfg, tried)
            todo = [i for i in selection.chosen["sample_id"] if i not in rendered]
            rendered |= _render(read_trajectories(store, todo), config, tokenizer) if todo else {}
            failed = {i for i in todo if rendered[i].problems}
            if not failed:
                break
            rejected |= failed
        chosen, shortfall, quota = selection.chosen, selection.shortfall, selection.quota
    return _selection(candidates, chosen, rendered, rejected, shortfall, quota, config)


def _selection(candidates: pl.DataFrame, chosen: pl.DataFrame, rendered: dict[str, _Rendered], rejected: set[str],
               shortfall: list[ShortfallRow], quota: dict[str, int], config: CurateConfig) -> TraceSelection:
    ex = config.agentic.export
    chosen_reason = dict(zip(chosen["sample_id"], chosen["reason"]))
    per_task = Counter(candidates.filter(pl.col("trajectory_id").is_in(list(chosen_reason)))["task_id"])
    out, kinds = [], Counter()
    for r in candidates.iter_rows(named=True):
        tid, env = r["trajectory_id"], r["environment"]
        render = json.dumps(rendered[tid].render) if tid in rendered else None
        if r["why_not"] is not None:
            status, reason = "not_kept", f"not kept: {r['why_not']}"
        elif tid in chosen_reason:
            status, reason = "exported", chosen_reason[tid]
        elif tid in rejected:
            problems = rendered[tid].problems
            kinds.update({_problem_kind(p) for p in problems})
            status, reason = "template_rejected", "chat template: " + "; ".join(problems)
        elif env not in quota:
            status, reason = "not_chosen", f"kept, not chosen: {env} has no share in agentic.export.environment_targets"
        elif per_task[r["task_id"]] >= ex.max_per_task:
            status, reason = "not_chosen", (f"kept, not chosen: {ex.max_per_task} trajectories of its task chosen "
                                            "already (agentic.export.max_per_task)")
        else:
            status, reason = "not_chosen", (f"kept, not chosen: {env}'s quota of {quota[env]} (its share of the "
                                            f"environment mix) went to trajectories preferred by rebalance.prefer "
                                            f"{config.rebalance.prefer}, at most {ex.max_per_task} per task")
        out.append({"trajectory_id": tid, "task_id": r["task_id"], "environment": env, "difficulty": r["difficulty"],
                    "status": status, "reason": reason, "render": render})
    exported = candidates.filter(pl.col("trajectory_id").is_in(list(chosen_reason)))  # already in shard order
    lines = [rendered[t].line | {"difficulty": d} for t, d in zip(exported["trajectory_id"], exported["difficulty"])]
    return TraceSelection(pl.DataFrame(out, schema={k: v for k, v in rows.TRACE_SELECTION.items() if k != "export_id"}),
                          lines, shortfall, dict(sorted(kinds.items())), sorted(set(exported["run_id"])))


def selection_digest(selection: TraceSelection, config: CurateConfig) -> str:
    """What the trace shards are a function of: the export settings and the chosen ids with their
    renders, in shard order."""
    settings = {"agentic_export": config.agentic.export.model_dump(mode="json"),
                "tokenizer": config.export_tokenizer(), "max_seq_len": config.export.max_seq_len,
                "shard_rows": config.export.shard_rows}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for line in selection.lines:
        digest.update(b"\n" + json.dumps([line["id"], line["render"], line["difficulty"]]).encode())
    return digest.hexdigest()


def latest_trace_export(store: Store) -> tuple[str, str | None] | None:
    found = store.frame("SELECT export_id, manifest ->> '$.selection_digest' AS digest FROM trace_exports "
                        "ORDER BY created_at DESC LIMIT 1").rows()
    return found[0] if found else None


def export_traces(store: Store, config: CurateConfig, run_id: str, out_dir: Path,
                  skip_unchanged: bool = False, tokenizer=None) -> TraceManifest | None:
    """Select, render, check and write a trace shard set, with its trace_exports, trace_selections
    and shards rows. tokenizer: the target's HF tokenizer (default: loaded from the export's
    target, config.export_tokenizer(); none there: no checks)."""
    name = config.export_tokenizer()
    if tokenizer is None and name is not None:
        from pipeline.export.chat_template import TargetTemplate

        tokenizer = TargetTemplate(name, config.export.max_seq_len).tok
    selection = select_traces(store, config, tokenizer)
    digest = selection_digest(selection, config)
    previous = latest_trace_export(store)
    if skip_unchanged and previous and previous[1] == digest:
        return None
    ex = config.agentic.export
    export_id = f"traces-{run_id}"
    manifest = write_trace_shards(
        selection.lines, out_dir, export_id, config.export.shard_rows, run_id=run_id,
        config_hash=config.config_hash(),
        counts_by_environment=dict(sorted(Counter(line["environment"] for line in selection.lines).items())),
        counts_by_render=dict(sorted(Counter("renamed" if line["render"]["renamed"] else "canonical"
                                             for line in selection.lines).items())),
        shortfall=selection.shortfall, columns=LINE_COLUMNS, history=ex.history, reasoning_in=ex.reasoning_in,
        run_ids=selection.run_ids, rejected=selection.rejected,
        target={"tokenizer": name, "max_seq_len": config.export.max_seq_len} if tokenizer is not None else None,
        not_kept=selection.rows.filter(pl.col("status") == "not_kept").height, selection_digest=digest)
    store.insert_many({
        "trace_exports": pl.DataFrame([{
            "export_id": export_id, "run_id": run_id, "created_at": now(), "out_dir": str(out_dir / export_id),
            "config_hash": manifest.config_hash, "manifest": manifest.model_dump_json()}]),
        "trace_selections": selection.rows.with_columns(export_id=pl.lit(export_id)),
        "shards": pl.DataFrame([f.model_dump() | {"export_id": export_id} for f in manifest.shards]),
    })
    return manifest
