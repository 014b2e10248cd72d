"""A judge rule in the loop: previewed on some samples (preview_verdicts, nothing that counts),
or run over a bad case's traced candidates as a pre-label (candidate_labels rows by
'judge:<rule>@<version>'; a user's label of the same sample outranks it).

Judging costs engine time, so a preview covers the samples named or the first `limit` the rule
applies to (by its own fields: domains, formats, reference), never the whole store by default."""

from __future__ import annotations

import json

import polars as pl

from judges.run import judge_samples
from pipeline.misalignment.labels import add_labels
from pipeline.progress import NoProgress, Progress
from pipeline.stages.judge import judge_config
from pipeline.store import Store
from pipeline.verdicts import SAMPLE_VIEW, verdict_frame
from schemas.chat import ChatBackend
from schemas.judge_rule import JudgeRule

DEFAULT_LIMIT = 20  # samples judged by a preview when neither samples nor a limit are given
PREVIEW_RUN = "preview"


def preview_hash(rule: JudgeRule, engine: ChatBackend) -> str:
    """The hash its verdicts would carry in a run with this engine (judge_config)."""
    return judge_config(rule, engine.model_name).config_hash


def judge_into_preview(store: Store, rule: JudgeRule, engine: ChatBackend, *, sample_ids: list[str] | None = None,
                       limit: int | None = None, batch_size: int = 16, max_retries: int = 2,
                       progress: Progress | None = None) -> int:
    """Judge the named samples (or the first `limit` it applies to), those not previewed yet under
    this engine's hash; their verdicts go to preview_verdicts. Returns how many were judged."""
    config_hash = preview_hash(rule, engine)
    if sample_ids:
        where, params = "x.sample_id IN (SELECT unnest(?::VARCHAR[]))", [sample_ids]
    else:
        where, params = rule.applies_to.sql("x")
        where = " AND ".join(where) or "TRUE"
    # The first `limit` samples it applies to (id order), those of them not previewed yet: the
    # same call again judges nothing.
    rows = store.frame(f"""
        SELECT * FROM (SELECT x.* FROM ({SAMPLE_VIEW}) x WHERE {where}
                       ORDER BY x.sample_id LIMIT {int(limit or (len(sample_ids) if sample_ids else DEFAULT_LIMIT))}) x
        WHERE NOT EXISTS (SELECT 1 FROM preview_verdicts p WHERE p.sample_id = x.sample_id
                          AND p.rule = ? AND p.config_hash = ?)
        ORDER BY x.sample_id""", [*params, rule.name, config_hash]).to_dicts()
    _judge(store, "preview_verdicts", rule, engine, rows, config_hash, batch_size, max_retries, progress)
    return len(rows)


def prelabel(store: Store, rule: JudgeRule, engine: ChatBackend, case_id: str, *, top: int = 20,
             batch_size: int = 16, max_retries: int = 2, progress: Progress | None = None) -> pl.DataFrame:
    """Judge the case's top `top` fused candidates (its newest trace) and label them: a failing
    verdict is 'dirty', a passing one 'clean', a judge error no label. The verdicts themselves
    go to preview_verdicts (they count nowhere). Returns sample_id, label, score, reason."""
    rows = store.frame(f"""
        WITH t AS (SELECT trace_id FROM trace_candidates WHERE case_id = ? ORDER BY created_at DESC LIMIT 1)
        SELECT x.* FROM ({SAMPLE_VIEW}) x
        JOIN trace_candidates c ON c.sample_id = x.sample_id AND c.method = 'fused' AND c.trace_id = (SELECT trace_id FROM t)
        ORDER BY c.rank LIMIT {int(top)}""", [case_id]).to_dicts()
    if not rows:
        raise KeyError(f"case {case_id} has no traced candidates: run `curate trace {case_id[:8]}` first")
    config_hash = preview_hash(rule, engine)
    results = _judge(store, "preview_verdicts", rule, engine, rows, config_hash, batch_size, max_retries, progress)
    out = pl.DataFrame({"sample_id": [r["sample_id"] for r in rows],
                        "label": [None if r["score"] is None else ("clean" if r["passed"] else "dirty") for r in results],
                        "score": [r["score"] for r in results], "reason": [r["reason"] for r in results]},
                       schema={"sample_id": pl.String, "label": pl.String, "score": pl.Float64, "reason": pl.String})
    labeller = f"judge:{rule.name}@{rule.version}"
    for label in ("dirty", "clean"):
        ids = out.filter(pl.col("label") == label)["sample_id"].to_list()
        if ids:
            add_labels(store, ids, label, case_id=case_id, labeller=labeller, note=f"pre-label by {engine.model_name}")
    return out


def _judge(store: Store, table: str, rule: JudgeRule, engine: ChatBackend, rows: list[dict], config_hash: str,
           batch_size: int, max_retries: int, progress: Progress | None) -> list[dict]:
    progress = progress or NoProgress()
    progress.start(f"judge {rule.name} v{rule.version} (preview)", len(rows))
    out = []
    try:
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            results = judge_samples(rule, batch, engine, max_retries=max_retries, on_progress=progress.advance)
            tokens = [(d["prompt_tokens"], d["completion_tokens"]) for d in (json.loads(r["details"]) for r in results)]
            frame = pl.DataFrame({"passed": [r["passed"] for r in results], "score": [r["score"] for r in results],
                                  "reason": [r["reason"] for r in results]},
                                 schema={"passed": pl.Boolean, "score": pl.Float64, "reason": pl.String})
            store.replace(table, verdict_frame([r["sample_id"] for r in batch], frame, stage="judge", rule=rule.name,
                                               version=rule.version, run_id=PREVIEW_RUN,
                                               details=[r["details"] for r in results], tokens=tokens,
                                               config_hash=config_hash))
            out += results
    finally:
        progress.done()
    return out
