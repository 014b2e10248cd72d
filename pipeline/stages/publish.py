"""Select (rebalance) kept samples and export them; record selections and shards in DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.hashing import stable_hash
from pipeline.stages.export import chat_records, write_shards
from pipeline.stages.rebalance import rebalance
from pipeline.store import Store, now
from schemas.config import CurateConfig
from schemas.shard import ShardManifest

# Kept samples with their best difficulty signal (pass_rate where it exists).
_KEPT = """
SELECT st.sample_id, st.question_id, st.domain,
       coalesce(max(d.score) FILTER (WHERE d.method = 'pass_rate'), max(d.score)) AS difficulty
FROM sample_status st LEFT JOIN question_difficulty d USING (question_id)
WHERE st.kept
GROUP BY st.sample_id, st.question_id, st.domain
"""


def select_and_export(store: Store, config: CurateConfig, run_id: str, out_dir: Path) -> ShardManifest:
    kept = store.frame(_KEPT)
    tried = dict(store.frame(
        "SELECT q.domain, count(DISTINCT s.question_id) FROM samples s JOIN questions q USING (question_id) GROUP BY 1"
    ).iter_rows())
    selection = rebalance(kept, config.rebalance, tried)
    export_id = f"export-{run_id}"
    rows = store.frame("""
        SELECT s.sample_id, s.question_id, q.domain, q.subdomain, q.source, s.requested_format,
               c.difficulty, s.model, s.messages, s.raw_text, s.reasoning, s.answer, s.reasoning_container
        FROM chosen c JOIN samples s USING (sample_id) JOIN questions q ON q.question_id = s.question_id
    """, chosen=selection.chosen)
    manifest = write_shards(chat_records(rows), out_dir, export_id, run_id, config.config_hash(),
                            config.export.shard_rows, selection.shortfall)
    store.insert_many({
        "exports": pl.DataFrame([{
            "export_id": export_id, "run_id": run_id, "created_at": now(), "out_dir": str(out_dir / export_id),
            "config_hash": manifest.config_hash, "manifest": manifest.model_dump_json(),
        }]),
        "selections": selection.chosen.with_columns(export_id=pl.lit(export_id)),
        "shards": pl.DataFrame([f.model_dump() | {"export_id": export_id} for f in manifest.shards]),
    })
    return manifest


def manifest_digest(manifest: ShardManifest) -> str:
    return stable_hash(json.loads(manifest.model_dump_json(exclude={"created_at"})))
