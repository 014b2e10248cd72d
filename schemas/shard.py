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
    counts_by_format: dict[str, int]  # by requested answer style
    shards: list[ShardFile]
    shortfall: list[ShortfallRow]
    columns: list[str]
    counts_by_difficulty_band: dict[str, int] = {}
    counts_by_source: dict[str, int] = {}
    run_ids: list[str] = []  # the runs that generated the exported samples
    file_format: str = "parquet"
    target: dict | None = None  # tokenizer, max_seq_len, reasoning: what the records were checked against
    rejected: dict[str, int] = {}  # reason -> samples left out by the chat-template checks
    # sha256 of the chosen sample ids in shard order + the export settings: equal digests mean
    # equal shards, so a scheduled run with nothing new writes no new shard set.
    selection_digest: str | None = None


class TraceManifest(BaseModel):
    """The manifest of a trace shard set (pipeline/export/traces.py): agentic trajectories as chat
    records, JSON lines (messages with tool calls and tool turns vary in shape)."""

    export_id: str
    run_id: str
    created_at: str
    config_hash: str
    total_rows: int
    counts_by_environment: dict[str, int]
    counts_by_render: dict[str, int]  # renamed / canonical tool names
    shards: list[ShardFile]
    shortfall: list[ShortfallRow]  # per environment (domain = name@version)
    columns: list[str]
    history: str  # interleaved | drop_before_last_user
    reasoning_in: str  # fields | think_tags | both
    run_ids: list[str] = []  # the runs that rolled out the exported trajectories
    file_format: str = "jsonl"
    target: dict | None = None  # tokenizer, max_seq_len: what the records were checked against
    rejected: dict[str, int] = {}  # reason kind -> trajectories left out by the chat-template checks
    not_kept: int = 0  # stored trajectories that were wrong or failed a trace rule or judge
    selection_digest: str | None = None
