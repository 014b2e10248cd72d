"""Perturbation coverage and the overfit alarm per axis, as the style metrics do for answer styles
(pipeline/stages/style_metrics.py): over a run's trajectories, per axis (response format, key
order, extra fields, transient error, call syntax, tool docs, system prompt, tool order, think
prefill) and per environment ('all' and each one), the values drawn with their counts, the
normalized entropy, the dominant value's share, the alarm, and whether every value the
configuration offers was drawn (coverage). Written to perturbation_values / perturbation_summary.

    configured = configured_axes(cfg, mode)                 # axis -> {value: probability}
    tables = compute(records, configured, run_id, cfg.alarm_share, cfg.alarm_min_samples)

The alarm fires when the dominant value's share exceeds alarm_share with at least
alarm_min_samples trajectories recording the axis, and exceeds what the configuration itself
explains: the largest probability p the config gives one value of the axis plus three standard
errors of a share, p + 3 sqrt(p (1 - p) / n) (three: a run checks about ten axes per environment,
and a fair draw must not alarm by chance). With enough trajectories an axis drawn uniformly over
three or more values then alarms above alarm_share, as styles do; one with two values only when
the draw is clearly lopsided; a value the config fixes (one call syntax, one think prefill;
p = 1) never alarms, and a transient error in 30% of rollouts does not alarm for its 70% "none".
A fixed axis shows as n_configured 1.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping

import polars as pl

from pipeline.agentic.perturb.response_format import (FORMATS, KEY_ORDERS, MAX_EXTRA_FIELDS,
                                                      TRANSIENT_ERROR_CALLS)
from pipeline.agentic.perturb.system_prompt import SYSTEM_PROMPTS
from pipeline.stages.style_metrics import normalized_entropy
from pipeline.store import Store
from schemas.config import AgenticConfig

ALL = "all"
NONE = "none"  # an axis recorded as null (no transient error, no think prefill)


def label(value) -> str:
    """A recorded choice as the text stored and shown: null is 'none', a list is comma-joined,
    control characters escaped ("<think>\\n")."""
    if value is None:
        return NONE
    if isinstance(value, list):
        return ",".join(label(v) for v in value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    return json.dumps(value)


def _transient(p: Mapping):
    at = p.get("transient_error_at")
    return NONE if at is None else f"call {at + 1}"


# Axis -> how to read it from a trajectory's recorded perturbations (None: not recorded there).
AXES = {
    "response_format": lambda p: label(p["response_format"]) if "response_format" in p else None,
    "key_order": lambda p: label(p["key_order"]) if "key_order" in p else None,
    "extra_fields": lambda p: label(p["extra_fields"]) if "extra_fields" in p else None,
    "transient_error": lambda p: _transient(p) if "transient_error_at" in p else None,
    "call_syntax": lambda p: label(p["call_syntax"]) if "call_syntax" in p else None,
    "tool_docs": lambda p: label(p["tool_docs"]) if "tool_docs" in p else None,
    "system_prompt": lambda p: label(p["system_prompt"]) if "system_prompt" in p else None,
    "tool_order": lambda p: label(p["tool_order"]) if "tool_order" in p else None,
    "think_prefill": lambda p: label(p["think_prefill"]) if "think_prefill" in p else None,
}


def _uniform(values: Iterable) -> dict[str, float]:
    counts = Counter(label(v) for v in values)
    total = sum(counts.values())
    return {v: c / total for v, c in counts.items()}


def configured_axes(cfg: AgenticConfig, mode: str) -> dict[str, dict[str, float] | None]:
    """Per axis, the values the run's config offers with the probability of drawing each (as
    plan_jobs draws them: pipeline/agentic/runner.py); None: no fixed set (tool order depends on
    the task's tools). Axes a prompt mode does not use are left out (chat_template: the template
    writes the tools, so no tool docs, system prompt variant or tool order is drawn)."""
    rate = cfg.transient_error_rate
    transient = {NONE: 1 - rate} | {f"call {i + 1}": rate / TRANSIENT_ERROR_CALLS for i in range(TRANSIENT_ERROR_CALLS)}
    axes: dict[str, dict[str, float] | None] = {
        "response_format": _uniform(FORMATS), "key_order": _uniform(KEY_ORDERS),
        "extra_fields": _uniform(range(MAX_EXTRA_FIELDS + 1)),
        "transient_error": {v: p for v, p in transient.items() if p > 0},
        "think_prefill": {label(cfg.think_prefill): 1.0},
    }
    if mode == "chat_template":
        axes["call_syntax"] = {"hermes": 1.0}
    else:
        axes |= {"call_syntax": _uniform(cfg.call_syntaxes), "tool_docs": _uniform(cfg.tool_docs),
                 "system_prompt": _uniform(range(len(SYSTEM_PROMPTS))), "tool_order": None}
    return axes


def alarm_threshold(alarm_share: float, expected: Mapping[str, float] | None, n: int) -> float:
    """The share the dominant value must exceed to alarm (see the module docstring)."""
    if not expected or n == 0:
        return alarm_share
    p = max(expected.values())
    return min(1.0, max(alarm_share, p + 3 * math.sqrt(p * (1 - p) / n)))


def _axis_rows(run_id: str, env: str, axis: str, drawn: Counter, expected: Mapping[str, float] | None,
               alarm_share: float, alarm_min: int) -> tuple[list[dict], dict]:
    n = sum(drawn.values())
    values = sorted(set(drawn) | set(expected or {}))
    rows = [{"run_id": run_id, "environment": env, "axis": axis, "value": v, "n": drawn.get(v, 0),
             "share": drawn.get(v, 0) / n if n else None,
             "configured": None if expected is None else v in expected,
             "expected_share": None if expected is None else expected.get(v, 0.0)} for v in values]
    top = min(drawn.items(), key=lambda kv: (-kv[1], kv[0])) if n else None
    share = top[1] / n if top else None
    threshold = alarm_threshold(alarm_share, expected, n)
    missing = None if expected is None else sorted(v for v in expected if drawn.get(v, 0) == 0)
    summary = {
        "run_id": run_id, "environment": env, "axis": axis, "n_trajectories": n, "n_values": len(drawn),
        "entropy": normalized_entropy(list(drawn.values())), "dominant_value": top[0] if top else None,
        "dominant_share": share, "alarm_share": alarm_share, "alarm_threshold": threshold,
        "alarm": bool(n >= alarm_min and share is not None and share > threshold),
        "n_configured": None if expected is None else len(expected), "missing": missing,
        "covered": None if expected is None else not missing,
    }
    return rows, summary


VALUES_SCHEMA = {"run_id": pl.String, "environment": pl.String, "axis": pl.String, "value": pl.String,
                 "n": pl.Int32, "share": pl.Float64, "configured": pl.Boolean, "expected_share": pl.Float64}
SUMMARY_SCHEMA = {"run_id": pl.String, "environment": pl.String, "axis": pl.String, "n_trajectories": pl.Int32,
                  "n_values": pl.Int32, "entropy": pl.Float64, "dominant_value": pl.String,
                  "dominant_share": pl.Float64, "alarm_share": pl.Float64, "alarm_threshold": pl.Float64,
                  "alarm": pl.Boolean, "n_configured": pl.Int32, "missing": pl.List(pl.String),
                  "covered": pl.Boolean}


def compute(records: Iterable[tuple[str, Mapping]], configured: Mapping[str, dict[str, float] | None], run_id: str,
            alarm_share: float, alarm_min: int) -> dict[str, pl.DataFrame]:
    """records: (environment, recorded perturbations) per trajectory. Pure: the tables' rows.
    Every configured axis gets a row per group, drawn or not; an axis recorded but not
    configured (a mode's axis in a mixed store) is reported without a configured set."""
    records = list(records)
    groups = [(ALL, records)] + [(env, [r for r in records if r[0] == env])
                                 for env in sorted({e for e, _ in records})]
    values, summary = [], []
    for env, part in groups:
        drawn: dict[str, Counter] = {axis: Counter() for axis in AXES}
        for _, p in part:
            for axis, read in AXES.items():
                v = read(p)
                if v is not None:
                    drawn[axis][v] += 1
        for axis in AXES:
            if axis not in configured and not drawn[axis]:
                continue
            rows, row = _axis_rows(run_id, env, axis, drawn[axis], configured.get(axis), alarm_share, alarm_min)
            values += rows
            summary.append(row)
    return {"perturbation_values": pl.DataFrame(values, schema=VALUES_SCHEMA),
            "perturbation_summary": pl.DataFrame(summary, schema=SUMMARY_SCHEMA)}


def notes(summary: pl.DataFrame) -> list[str]:
    """The run summary's lines: every alarm, and the configured values never drawn over all
    environments (per environment a small run misses some by chance)."""
    out = []
    for r in summary.iter_rows(named=True):
        if r["alarm"]:
            out.append(f"[agentic] perturbation overfit alarm: {r['environment']}/{r['axis']}: {r['dominant_value']} "
                       f"{r['dominant_share']:.0%} of {r['n_trajectories']} (threshold {r['alarm_threshold']:.0%}; "
                       "SELECT * FROM perturbation_alarms)")
        if r["environment"] == ALL and r["covered"] is False:
            out.append(f"[agentic] perturbation coverage: {r['axis']} never drew {', '.join(r['missing'])} "
                       f"in {r['n_trajectories']} trajectories (SELECT * FROM perturbation_values "
                       f"WHERE axis = '{r['axis']}')")
    return out


def record_perturbations(store: Store, trajectory_ids: list[str], cfg: AgenticConfig, mode: str,
                         run_id: str) -> pl.DataFrame:
    """Compute and store (replacing the run's rows) the tables over these trajectories; returns the summary."""
    frame = store.frame("SELECT environment, CAST(perturbations AS VARCHAR) AS p FROM trajectories "
                        "WHERE trajectory_id IN (SELECT id FROM probe) ORDER BY trajectory_id",
                        probe=pl.DataFrame({"id": trajectory_ids}, schema={"id": pl.String}))
    tables = compute(((env, json.loads(p)) for env, p in frame.rows()), configured_axes(cfg, mode), run_id,
                     cfg.alarm_share, cfg.alarm_min_samples)
    store.replace_many(tables)
    return tables["perturbation_summary"]
