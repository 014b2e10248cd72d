"""Export stage: selected samples -> Parquet shards + manifest, written atomically.

Rows are sorted (domain, sample_id) and carry no timestamps, so the same selection gives the
same bytes. The folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.export.dataset_card import dataset_card
from pipeline.export.rebalance import difficulty_band
from schemas.shard import ShardFile, ShardManifest, ShortfallRow

# reasoning_content: set on assistant messages of reasoning_field samples (the reasoning is then
# not in content); null otherwise.
MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string()), ("reasoning_content", pa.string())])
SHARD_SCHEMA = pa.schema([
    ("id", pa.string()), ("question_id", pa.string()), ("domain", pa.string()), ("subdomain", pa.string()),
    ("source", pa.string()), ("requested_format", pa.string()), ("difficulty", pa.float64()),
    ("model", pa.string()), ("messages", pa.list_(MESSAGE)), ("reasoning", pa.string()), ("answer", pa.string()),
    ("reasoning_container", pa.string()),
])


def assistant_message(row: dict) -> dict:
    """The answer with its reasoning: inside <think> tags (think_tags, the default) or beside it."""
    if row.get("reasoning_container") == "reasoning_field":
        return {"role": "assistant", "content": row["answer"], "reasoning_content": row["reasoning"]}
    return {"role": "assistant", "content": row["raw_text"], "reasoning_content": None}


def chat_records(rows: pl.DataFrame, reasoning: str = "per_sample") -> pa.Table:
    """rows: sample_id, question_id, domain, subdomain, source, requested_format, difficulty, model,
    messages (the generation prompt as JSON), raw_text, reasoning, answer, reasoning_container.
    The prompt is kept as generated, system message included: its perturbation is part of the data.
    reasoning: per_sample (each sample's container) or think_tags / reasoning_field for all."""
    records = []
    for r in rows.sort(["domain", "sample_id"]).iter_rows(named=True):
        prompt = [m | {"reasoning_content": None} for m in json.loads(r["messages"])]
        container = (r.get("reasoning_container") or "think_tags") if reasoning == "per_sample" else reasoning
        records.append({
            "id": r["sample_id"], "question_id": r["question_id"], "domain": r["domain"],
            "subdomain": r["subdomain"], "source": r["source"], "requested_format": r["requested_format"],
            "difficulty": r["difficulty"], "model": r["model"],
            "messages": prompt + [assistant_message(r | {"reasoning_container": container})],
            "reasoning": r["reasoning"], "answer": r["answer"], "reasoning_container": container,
        })
    return pa.Table.from_pylist(records, schema=SHARD_SCHEMA)


def write_shards(parts: pa.Table | Iterable[pa.Table], out_dir: Path, export_id: str, run_id: str, config_hash: str,
                 shard_rows: int, shortfall: list[ShortfallRow], *, total_rows: int | None = None,
                 file_format: str = "parquet", band_edges: tuple[float, float] = (1 / 3, 2 / 3),
                 run_ids: list[str] | None = None, target: dict | None = None,
                 rejected: dict[str, int] | None = None, selection_digest: str | None = None) -> ShardManifest:
    """parts: the whole table, or an iterable yielding one table per shard (shard_rows rows, the
    last fewer; total_rows given) so a large export streams through memory one shard at a time."""
    if isinstance(parts, pa.Table):
        total_rows, table = parts.num_rows, parts
        parts = (table.slice(i, shard_rows) for i in range(0, table.num_rows, shard_rows))
    final = out_dir / export_id
    tmp = out_dir / f".{export_id}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    # An empty selection writes no data file: a 0-row Parquet file makes datasets.load_dataset
    # fail ("BatchSize must be greater than 0"); the manifest says 0 rows instead.
    n_shards = -(-total_rows // shard_rows)
    files, tallies = [], {k: Counter() for k in ("domain", "requested_format", "band", "source")}
    for i, part in enumerate(parts):
        name = f"data/train-{i:05d}-of-{n_shards:05d}.{'jsonl' if file_format == 'jsonl' else 'parquet'}"
        if file_format == "jsonl":
            lines = (json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in part.to_pylist())
            (tmp / name).write_text("".join(lines), encoding="utf-8")
        else:
            pq.write_table(part, tmp / name, compression="zstd")
        data = (tmp / name).read_bytes()
        files.append(ShardFile(file=name, rows=part.num_rows, bytes=len(data), sha256=hashlib.sha256(data).hexdigest()))
        frame = pl.from_arrow(part.select(["domain", "requested_format", "difficulty", "source"])).with_columns(
            band=difficulty_band(pl.col("difficulty"), band_edges))
        for column, tally in tallies.items():
            tally.update(dict(frame.group_by(column).len().iter_rows()))
    if sum(f.rows for f in files) != total_rows or len(files) != n_shards:
        raise RuntimeError(f"export {export_id}: wrote {len(files)} shards / {sum(f.rows for f in files)} rows, "
                           f"expected {n_shards} / {total_rows}")

    def counts(column: str) -> dict[str, int]:
        return {str(k): v for k, v in sorted(tallies[column].items(), key=lambda kv: str(kv[0]))}

    manifest = ShardManifest(
        export_id=export_id, run_id=run_id, created_at=datetime.now(timezone.utc).isoformat(),
        config_hash=config_hash, total_rows=total_rows,
        counts_by_domain=counts("domain"), counts_by_format=counts("requested_format"),
        counts_by_difficulty_band=counts("band"), counts_by_source=counts("source"),
        shards=files, shortfall=shortfall, columns=SHARD_SCHEMA.names, run_ids=sorted(run_ids or []),
        file_format=file_format, target=target, rejected=rejected or {}, selection_digest=selection_digest,
    )
    (tmp / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    (tmp / "README.md").write_text(dataset_card(manifest))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return manifest
