"""The row shapes of the stored tables, declared once (polars dtypes, the column order of inserts).

pipeline/store.py creates the tables (with keys, defaults and comments); tests/stages/test_rows.py
checks each shape here against the table DuckDB made, so the two cannot drift apart. The
stages build their frames with these shapes; the columns a rule may read (RULE_INPUT and the
SQL of the sample view) are derived from them.
"""

from __future__ import annotations

import polars as pl

_TIME = pl.Datetime("us", "UTC")
JSON_COLUMNS = {"messages", "sampling_params", "perturbation", "details", "params", "definition",
                "task", "perturbations", "tools", "tool_calls", "render"}  # strings here, JSON in DuckDB

SAMPLE = {  # samples: one synthesized answer
    "sample_id": pl.String, "question_id": pl.String, "run_id": pl.String, "sample_index": pl.Int32,
    "gen_config_hash": pl.String, "model": pl.String, "requested_format": pl.String,
    "prompt_hash": pl.String, "messages": pl.String, "raw_text": pl.String, "reasoning": pl.String,
    "answer": pl.String, "think_closed_by": pl.String, "reasoning_finish": pl.String,
    "finish_reason": pl.String, "prompt_tokens": pl.Int32, "completion_tokens": pl.Int32,
    "sampling_params": pl.String, "created_at": _TIME,
    "placement": pl.String, "length_band": pl.String, "perturbation": pl.String,
    "realized_format": pl.String, "realized_length_band": pl.String, "reasoning_container": pl.String,
}

VERDICT = {  # verdicts: one rule's verdict on one sample
    "sample_id": pl.String, "stage": pl.String, "rule": pl.String, "rule_version": pl.Int32,
    "passed": pl.Boolean, "score": pl.Float64, "reason": pl.String, "details": pl.String,
    "run_id": pl.String, "created_at": _TIME,
    "prompt_tokens": pl.Int32, "completion_tokens": pl.Int32, "config_hash": pl.String,
}

QUESTION_VERDICT = {  # question_verdicts: screening (decontamination, dedup) of one question
    "question_id": pl.String, "stage": pl.String, "rule": pl.String, "rule_version": pl.Int32, "passed": pl.Boolean,
    "score": pl.Float64, "reason": pl.String, "details": pl.String, "run_id": pl.String, "created_at": _TIME,
}

QUESTION_DIFFICULTY = {  # question_difficulty: one difficulty signal of one question
    "question_id": pl.String, "method": pl.String, "version": pl.Int32, "score": pl.Float64,
    "n_samples": pl.Int32, "detail": pl.String, "run_id": pl.String, "created_at": _TIME, "config_hash": pl.String,
}

RULE_CONFIG = {  # rule_configs: the config hash each rule last ran with
    "rule": pl.String, "stage": pl.String, "rule_version": pl.Int32, "config_hash": pl.String,
    "params": pl.String, "run_id": pl.String, "updated_at": _TIME,
}

BAD_CASE = {  # bad_cases: one bad model behaviour
    "case_id": pl.String, "prompt": pl.String, "bad_output": pl.String, "expected": pl.String,
    "tags": pl.List(pl.String), "model": pl.String, "source": pl.String, "created_at": _TIME,
}

TRACE_CANDIDATE = {  # trace_candidates: a sample found behind a bad case by one method
    "trace_id": pl.String, "case_id": pl.String, "sample_id": pl.String, "method": pl.String,
    "score": pl.Float64, "rank": pl.Int32, "detail": pl.String, "created_at": _TIME,
}

CANDIDATE_LABEL = {  # candidate_labels: dirty or clean, by a user or a judge pre-label
    "case_id": pl.String, "sample_id": pl.String, "label": pl.String, "labeller": pl.String,
    "note": pl.String, "created_at": _TIME,
}

RULE_STATE = {  # rule_states: a rule switched on or off
    "rule": pl.String, "kind": pl.String, "enabled": pl.Boolean, "definition": pl.String,
    "source": pl.String, "changed_at": _TIME,
}

TRAJECTORY = {  # trajectories: one agentic rollout (schemas/agentic.py Trajectory)
    "trajectory_id": pl.String, "task_id": pl.String, "task": pl.String, "question_id": pl.String,
    "environment": pl.String, "seed": pl.Int64, "model": pl.String, "perturbations": pl.String, "tools": pl.String,
    "outcome": pl.String, "final_answer": pl.String, "correct": pl.Boolean, "outcome_detail": pl.String,
    "steps": pl.Int32, "prompt_tokens": pl.Int32, "completion_tokens": pl.Int32, "final_state_hash": pl.String,
    "run_id": pl.String, "created_at": _TIME,
}

TRAJECTORY_MESSAGE = {  # trajectory_messages: one message of a trajectory
    "trajectory_id": pl.String, "turn": pl.Int32, "role": pl.String, "content": pl.String, "reasoning": pl.String,
    "tool_calls": pl.String, "tool_call_id": pl.String, "name": pl.String, "tool_status": pl.String,
}

TRAJECTORY_VERDICT = {  # trajectory_verdicts: the outcome check, the trace rules and judges, per trajectory
    "trajectory_id": pl.String, "stage": pl.String, "rule": pl.String, "rule_version": pl.Int32,
    "passed": pl.Boolean, "score": pl.Float64, "reason": pl.String, "run_id": pl.String, "created_at": _TIME,
    "config_hash": pl.String,
    "details": pl.String, "prompt_tokens": pl.Int32, "completion_tokens": pl.Int32,  # judges only (else null)
}

TASK_DIFFICULTY = {  # task_difficulty: an agentic task's pass rate over its k rollouts
    "task_id": pl.String, "method": pl.String, "version": pl.Int32, "environment": pl.String, "score": pl.Float64,
    "pass_rate": pl.Float64, "pass_at_k": pl.Boolean, "k": pl.Int32, "n_rollouts": pl.Int32, "detail": pl.String,
    "run_id": pl.String, "created_at": _TIME,
}

TRACE_SELECTION = {  # trace_selections: one stored trajectory in one trace export, and why
    "export_id": pl.String, "trajectory_id": pl.String, "task_id": pl.String, "environment": pl.String,
    "difficulty": pl.Float64, "status": pl.String, "reason": pl.String, "render": pl.String,
}

# What a rule may read: these columns of the sample, then its question's (name -> question column).
_RULE_SAMPLE_COLUMNS = ("sample_id", "question_id", "requested_format", "raw_text", "reasoning", "answer",
                        "think_closed_by", "reasoning_finish", "finish_reason", "completion_tokens")
_RULE_QUESTION_COLUMNS = {"domain": ("domain", pl.String), "question_text": ("text", pl.String),
                          "reference_answer": ("reference_answer", pl.String),
                          "answer_type": ("answer_type", pl.String), "level": ("level", pl.Float64),
                          "tests": ("tests", pl.List(pl.String))}

RULE_INPUT = {c: SAMPLE[c] for c in _RULE_SAMPLE_COLUMNS} | {n: t for n, (_, t) in _RULE_QUESTION_COLUMNS.items()}

SAMPLE_VIEW = "SELECT {} FROM samples s JOIN questions q USING (question_id)".format(", ".join(
    [f"s.{c}" for c in _RULE_SAMPLE_COLUMNS]
    + [f"q.{col}" if col == name else f"q.{col} AS {name}" for name, (col, _) in _RULE_QUESTION_COLUMNS.items()]))
