"""Select (rebalance) kept samples and export them; record selections, rejects and shards in DuckDB.

The chat-template checks run on what the rebalance chose; a rejected sample is recorded and the
rebalance runs again without it, so quotas are filled with records that pass (checking only the
chosen keeps the cost at the export's size, not the store's)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa

from pipeline.hashing import stable_hash
from pipeline.stages.chat_template import TargetTemplate
from pipeline.stages.export import chat_records, write_shards
from pipeline.stages.rebalance import Selection, rebalance
from pipeline.store import Store, now
from schemas.config import CurateConfig
from schemas.shard import ShardManifest

# Kept samples with their best difficulty signal (pass_rate where it exists).
_KEPT = """
SELECT st.sample_id, st.question_id, st.domain, any_value(s.requested_format) AS requested_format,
       coalesce(max(d.score) FILTER (WHERE d.method = 'pass_rate'), max(d.score)) AS difficulty
FROM sample_status st JOIN samples s USING (sample_id) LEFT JOIN question_difficulty d ON d.question_id = st.question_id
WHERE st.kept
GROUP BY st.sample_id, st.question_id, st.domain
"""
_ROWS = """
SELECT s.sample_id, s.question_id, q.domain, q.subdomain, q.source, s.requested_format,
       c.difficulty, s.model, s.messages, s.raw_text, s.reasoning, s.answer, s.reasoning_container, s.run_id
FROM chosen c JOIN samples s USING (sample_id) JOIN questions q ON q.question_id = s.question_id
"""
_MAX_ROUNDS = 10


def _checked_selection(store: Store, config: CurateConfig, kept: pl.DataFrame, tried: dict,
                       template: TargetTemplate | None) -> tuple[Selection, pl.DataFrame, pa.Table, dict]:
    """Rebalance, check the chosen records, drop rejects, repeat until all chosen pass."""
    rejects: dict[str, tuple[str, int | None]] = {}
    for _ in range(_MAX_ROUNDS):
        selection = rebalance(kept.filter(~pl.col("sample_id").is_in(list(rejects))), config.rebalance, tried)
        rows = store.frame(_ROWS, chosen=selection.chosen)
        table = chat_records(rows, config.export.reasoning)
        if template is None:
            break
        ids, messages = table.column("id").to_pylist(), table.column("messages").to_pylist()
        new = {i: (r.reason, r.tokens) for i, r in zip(ids, template.check_many(messages)) if not r.ok}
        if not new:
            break
        rejects |= new
    else:
        raise RuntimeError(f"chat-template checks still rejecting after {_MAX_ROUNDS} rounds ({len(rejects)} so far)")
    frame = pl.DataFrame([{"sample_id": s, "reason": r, "tokens": t} for s, (r, t) in rejects.items()],
                         schema={"sample_id": pl.String, "reason": pl.String, "tokens": pl.Int32})
    return selection, frame, table, dict(rows.group_by("run_id").len().iter_rows())


def select_and_export(store: Store, config: CurateConfig, run_id: str, out_dir: Path) -> ShardManifest:
    kept = store.frame(_KEPT)
    tried = dict(store.frame(
        "SELECT q.domain, count(DISTINCT s.question_id) FROM samples s JOIN questions q USING (question_id) GROUP BY 1"
    ).iter_rows())
    ex = config.export
    template = TargetTemplate(ex.tokenizer, ex.max_seq_len) if ex.tokenizer else None
    selection, rejects, table, runs = _checked_selection(store, config, kept, tried, template)
    export_id = f"export-{run_id}"
    target = {"tokenizer": ex.tokenizer, "max_seq_len": ex.max_seq_len, "reasoning": ex.reasoning} if template else None
    manifest = write_shards(table, out_dir, export_id, run_id, config.config_hash(), ex.shard_rows,
                            selection.shortfall, file_format=ex.file_format, band_edges=config.rebalance.band_edges,
                            run_ids=list(runs), target=target,
                            rejected=dict(rejects.group_by("reason").len().sort("reason").iter_rows()))
    store.insert_many({
        "exports": pl.DataFrame([{
            "export_id": export_id, "run_id": run_id, "created_at": now(), "out_dir": str(out_dir / export_id),
            "config_hash": manifest.config_hash, "manifest": manifest.model_dump_json(),
        }]),
        "selections": selection.chosen.with_columns(export_id=pl.lit(export_id)),
        "export_rejects": rejects.with_columns(export_id=pl.lit(export_id)),
        "shards": pl.DataFrame([f.model_dump() | {"export_id": export_id} for f in manifest.shards]),
    })
    return manifest


def manifest_digest(manifest: ShardManifest) -> str:
    return stable_hash(json.loads(manifest.model_dump_json(exclude={"created_at"})))
