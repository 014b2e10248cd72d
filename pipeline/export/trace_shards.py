"""Trace shard set: chat records of agentic trajectories as JSON lines + manifest, written atomically
like the sample shards (pipeline/export/shards.py): the folder is written under a temporary name
and renamed when complete; lines carry no timestamps, so the same selection gives the same bytes.

JSON lines rather than Parquet: a record's messages differ in shape (tool_calls on assistant
turns, tool_call_id and name on tool turns, reasoning keys or not), which a Parquet struct would
fill with nulls, changing the record a chat template sees.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from schemas.shard import ShardFile, TraceManifest


def write_trace_shards(lines: list[dict], out_dir: Path, export_id: str, shard_rows: int,
                       **manifest: object) -> TraceManifest:
    """lines: the records in shard order. manifest: the TraceManifest fields other than export_id,
    created_at, total_rows, shards and file_format. An empty selection writes no data file."""
    final = out_dir / export_id
    tmp = out_dir / f".{export_id}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    n_shards = -(-len(lines) // shard_rows)
    files = []
    for i in range(n_shards):
        name = f"data/traces-{i:05d}-of-{n_shards:05d}.jsonl"
        part = lines[i * shard_rows:(i + 1) * shard_rows]
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part).encode("utf-8")
        (tmp / name).write_bytes(data)
        files.append(ShardFile(file=name, rows=len(part), bytes=len(data), sha256=hashlib.sha256(data).hexdigest()))
    result = TraceManifest(export_id=export_id, created_at=datetime.now(timezone.utc).isoformat(),
                           total_rows=len(lines), shards=files, file_format="jsonl", **manifest)
    (tmp / "manifest.json").write_text(result.model_dump_json(indent=2))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return result
