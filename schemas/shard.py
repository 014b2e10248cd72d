"""The manifest written beside every exported shard set."""

from __future__ import annotations

from pydantic import BaseModel


class ShardFile(BaseModel):
    file: str
    rows: int
    bytes: int
    sha256: str


class ShortfallRow(BaseModel):
    domain: str
    target_fraction: float
    wanted: int
    selected: int
    missing: int
    questions_to_synthesize: int | None  # estimate from this domain's keep rate


class ShardManifest(BaseModel):
    export_id: str
    run_id: str
    created_at: str
    config_hash: str
    total_rows: int
    counts_by_domain: dict[str, int]
    counts_by_format: dict[str, int]
    shards: list[ShardFile]
    shortfall: list[ShortfallRow]
    columns: list[str]
