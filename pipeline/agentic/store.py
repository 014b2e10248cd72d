"""Trajectories in the DuckDB store (tables `trajectories` and `trajectory_messages`, made by
pipeline/store.py; row shapes in schemas/rows.py).

A trajectory and its messages are written in one transaction, keyed by trajectory_id (a hash
known before the rollout), so a killed rollout stage resumes like synthesis does: it asks
`existing_trajectory_ids` for the planned ids and runs only the missing ones; writing a
trajectory twice is a no-op.
"""

from __future__ import annotations

import json

import polars as pl

from pipeline.store import Store, now
from schemas import rows
from schemas.agentic import Message, Outcome, Task, ToolSpec, Trajectory

# What the trace rules read (filters/trace/view.py): messages and tools as JSON, the task's text.
TRACE_RULE_INPUT = """
SELECT t.trajectory_id, t.task ->> '$.text' AS question_text, CAST(t.tools AS VARCHAR) AS tools,
       CAST(to_json(list({'role': m.role, 'content': m.content, 'reasoning': m.reasoning,
                          'tool_calls': m.tool_calls, 'tool_call_id': m.tool_call_id, 'name': m.name,
                          'tool_status': m.tool_status} ORDER BY m.turn)) AS VARCHAR) AS messages
FROM trajectories t JOIN trajectory_messages m USING (trajectory_id)
GROUP BY t.trajectory_id, t.task, t.tools
"""


def _dump(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def trajectory_frames(trajectories: list[Trajectory], run_id: str) -> dict[str, pl.DataFrame]:
    created = now()
    heads, messages = [], []
    for t in trajectories:
        tid = t.trajectory_id
        heads.append({
            "trajectory_id": tid, "task_id": t.task_id, "task": _dump(t.task.model_dump(mode="json")),
            "question_id": t.task.question_id, "environment": t.environment, "seed": t.seed, "model": t.model,
            "perturbations": _dump(t.perturbations), "tools": _dump([s.model_dump(mode="json") for s in t.tools]),
            "outcome": t.outcome.status, "final_answer": t.outcome.final_answer, "correct": t.outcome.correct,
            "outcome_detail": t.outcome.detail, "steps": t.steps, "prompt_tokens": t.prompt_tokens,
            "completion_tokens": t.completion_tokens, "final_state_hash": t.final_state_hash,
            "run_id": run_id, "created_at": created,
        })
        for turn, m in enumerate(t.messages):
            messages.append({
                "trajectory_id": tid, "turn": turn, "role": m.role, "content": m.content, "reasoning": m.reasoning,
                "tool_calls": None if m.tool_calls is None
                else _dump([c.model_dump(mode="json") for c in m.tool_calls]),
                "tool_call_id": m.tool_call_id, "name": m.name, "tool_status": m.tool_status,
            })
    return {"trajectories": pl.DataFrame(heads, schema=rows.TRAJECTORY),
            "trajectory_messages": pl.DataFrame(messages, schema=rows.TRAJECTORY_MESSAGE)}


def write_trajectories(store: Store, trajectories: list[Trajectory], run_id: str) -> int:
    """Insert trajectories with their messages in one transaction; those stored already are
    skipped. Returns how many were new."""
    before = store.count("trajectories")
    store.insert_many(trajectory_frames(trajectories, run_id))
    return store.count("trajectories") - before


def existing_trajectory_ids(store: Store, ids: list[str]) -> set[str]:
    return store.existing_ids("trajectories", "trajectory_id", ids)


def read_trajectories(store: Store, ids: list[str] | None = None) -> list[Trajectory]:
    """Trajectories as they were written (all, or these ids), ordered by id."""
    where = "WHERE trajectory_id IN (SELECT id FROM probe)" if ids is not None else ""
    probe = {"probe": pl.DataFrame({"id": ids or []}, schema={"id": pl.String})} if ids is not None else {}
    heads = store.frame(f"SELECT * FROM trajectories {where} ORDER BY trajectory_id", **probe)
    messages = store.frame(f"SELECT * FROM trajectory_messages {where} ORDER BY trajectory_id, turn", **probe)
    by_id: dict[str, list[Message]] = {}
    for m in messages.iter_rows(named=True):
        by_id.setdefault(m["trajectory_id"], []).append(Message(
            role=m["role"], content=m["content"], reasoning=m["reasoning"],
            tool_calls=json.loads(m["tool_calls"]) if m["tool_calls"] is not None else None,
            tool_call_id=m["tool_call_id"], name=m["name"], tool_status=m["tool_status"]))
    out = []
    for h in heads.iter_rows(named=True):
        out.append(Trajectory(
            task=Task.model_validate_json(h["task"]), environment=h["environment"], seed=h["seed"], model=h["model"],
            perturbations=json.loads(h["perturbations"]),
            tools=[ToolSpec.model_validate(s) for s in json.loads(h["tools"])],
            messages=by_id.get(h["trajectory_id"], []),
            outcome=Outcome(status=h["outcome"], final_answer=h["final_answer"], correct=h["correct"],
                            detail=h["outcome_detail"]),
            steps=h["steps"], prompt_tokens=h["prompt_tokens"], completion_tokens=h["completion_tokens"],
            final_state_hash=h["final_state_hash"]))
    return out
