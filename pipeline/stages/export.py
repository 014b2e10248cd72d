"""Select (rebalance) kept samples and export them; record selections, rejects and shards in DuckDB.

The chat-template checks run on what the rebalance chose; a rejected sample is recorded and the
rebalance runs again without it, so quotas are filled with records that pass (checking only the
chosen keeps the cost at the export's size, not the store's)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pyarrow as pa

from pipeline.hashing import stable_hash
from pipeline.export.chat_template import TargetTemplate
from pipeline.export.shards import chat_records, write_shards
from pipeline.export.rebalance import Selection, rebalance_store
from pipeline.stage import StageContext, StageReport
from pipeline.store import Store, now
from schemas.config import CurateConfig
from schemas.shard import ShardManifest

# Kept samples with their best difficulty signal: combined, else pass_rate, else any; and the
# pass-rate difficulty itself (1 - pass rate) for rebalance.prefer: pass_rate_band. A temp table
# (DuckDB spills it) that rejected records are deleted from between rebalance rounds.
KEPT_FOR_EXPORT = """
CREATE OR REPLACE TEMP TABLE _kept AS
WITH d AS (
    SELECT question_id,
           coalesce(max(score) FILTER (WHERE method = 'combined'), max(score) FILTER (WHERE method = 'pass_rate'),
                    max(score)) AS difficulty,
           max(score) FILTER (WHERE method = 'pass_rate') AS pass_difficulty
    FROM question_difficulty GROUP BY question_id
)
SELECT k.sample_id, k.question_id, k.domain, s.requested_format, d.difficulty, d.pass_difficulty
FROM kept_samples k JOIN samples s USING (sample_id) LEFT JOIN d ON d.question_id = k.question_id
"""
_ROWS = """
SELECT s.sample_id, s.question_id, q.domain, q.subdomain, q.source, s.requested_format,
       c.difficulty, s.model, s.messages, s.raw_text, s.reasoning, s.answer, s.reasoning_container, s.run_id
FROM chosen c JOIN samples s USING (sample_id) JOIN questions q ON q.question_id = s.question_id
"""
_MAX_ROUNDS = 10
_CHECK_BATCH = 5000  # records rendered and tokenized at a time: memory stays flat, few scans


def _records(store: Store, chosen: pl.DataFrame, reasoning: str) -> pa.Table:
    return chat_records(store.frame(_ROWS, chosen=chosen), reasoning)


def _pages(store: Store, table: str, size: int):
    """The rows of a temp table with a `pos` column, `size` at a time in pos order."""
    total = store.scalar(f"SELECT count(*) FROM {table}")
    for start in range(0, total, size):
        yield store.frame(f"SELECT * EXCLUDE (pos) FROM {table} WHERE pos >= ? AND pos < ? ORDER BY pos",
                          [start, start + size])


def _ordered(store: Store, name: str, where: str = "") -> None:
    """`name`: the chosen rows in shard order (domain, sample_id) with their position."""
    store.con.execute(f"""CREATE OR REPLACE TEMP TABLE {name} AS
        SELECT sample_id, domain, difficulty, reason, row_number() OVER (ORDER BY domain, sample_id) - 1 AS pos
        FROM _chosen {where}""")


def _checked_selection(store: Store, config: CurateConfig, tried: dict,
                       template: TargetTemplate | None) -> tuple[Selection, pl.DataFrame]:
    """Rebalance, check the chosen records, drop rejects, repeat until all chosen pass. The
    choice stays in DuckDB (`_chosen`); records are checked a batch at a time, so memory does not
    grow with the store or the export."""
    rejects: dict[str, tuple[str, int | None]] = {}
    store.con.execute(KEPT_FOR_EXPORT)
    store.con.execute("CREATE OR REPLACE TEMP TABLE _passed (sample_id VARCHAR)")
    for _ in range(_MAX_ROUNDS):
        selection = rebalance_store(store, "_kept", config.rebalance, tried)
        if template is None:
            break
        _ordered(store, "_todo", "WHERE sample_id NOT IN (SELECT sample_id FROM _passed)")
        new = {}
        for page in _pages(store, "_todo", _CHECK_BATCH):
            table = _records(store, page, config.export.reasoning)
            ids, messages = table.column("id").to_pylist(), table.column("messages").to_pylist()
            ok = []
            for sample_id, result in zip(ids, template.check_many(messages)):
                if result.ok:
                    ok.append(sample_id)
                else:
                    new[sample_id] = (result.reason, result.tokens)
            store.con.register("_ok", pl.DataFrame({"sample_id": ok}, schema={"sample_id": pl.String}))
            store.con.execute("INSERT INTO _passed SELECT sample_id FROM _ok")
            store.con.unregister("_ok")
        if not new:
            break
        rejects |= new
        store.con.register("_rejected", pl.DataFrame({"sample_id": list(new)}, schema={"sample_id": pl.String}))
        store.con.execute("DELETE FROM _kept WHERE sample_id IN (SELECT sample_id FROM _rejected)")
        store.con.unregister("_rejected")
    else:
        raise RuntimeError(f"chat-template checks still rejecting after {_MAX_ROUNDS} rounds ({len(rejects)} so far)")
    frame = pl.DataFrame([{"sample_id": s, "reason": r, "tokens": t} for s, (r, t) in rejects.items()],
                         schema={"sample_id": pl.String, "reason": pl.String, "tokens": pl.Int32})
    return selection, frame


def selection_digest(chosen_ids, config: CurateConfig) -> str:
    """What the shards are a function of: the chosen samples in shard order (a sample id fixes its
    content) and the export settings. `chosen_ids`: the ids in shard order (any iterable)."""
    digest = hashlib.sha256(config.export.model_dump_json().encode())
    for sample_id in chosen_ids:
        digest.update(b"\n" + sample_id.encode())
    return digest.hexdigest()


def latest_export(store: Store) -> tuple[str, str | None] | None:
    """(export_id, selection_digest) of the newest export, or None."""
    rows = store.frame("SELECT export_id, manifest ->> '$.selection_digest' AS digest FROM exports "
                       "ORDER BY created_at DESC LIMIT 1").rows()
    return rows[0] if rows else None


_PAGE = 50_000  # chosen ids read at a time for the digest


def select_and_export(store: Store, config: CurateConfig, run_id: str, out_dir: Path,
                      skip_unchanged: bool = False) -> ShardManifest | None:
    """Select and write a shard set. With skip_unchanged, returns None and writes nothing when the
    selection (and export settings) equal the newest export's: its shards are still current."""
    tried = dict(store.frame(
        "SELECT q.domain, count(DISTINCT s.question_id) FROM samples s JOIN questions q USING (question_id) GROUP BY 1"
    ).iter_rows())
    ex = config.export
    tokenizer = config.export_tokenizer()
    template = TargetTemplate(tokenizer, ex.max_seq_len) if tokenizer else None
    try:
        selection, rejects = _checked_selection(store, config, tried, template)
        _ordered(store, "_shard_order")  # the shards' row order
        total = store.scalar("SELECT count(*) FROM _shard_order")
        digest = selection_digest((sid for page in _pages(store, "_shard_order", _PAGE) for sid in page["sample_id"]),
                                  config)
        previous = latest_export(store)
        if skip_unchanged and previous and previous[1] == digest:
            return None
        runs = store.frame("SELECT DISTINCT run_id FROM samples WHERE sample_id IN (SELECT sample_id FROM _chosen)"
                           )["run_id"].to_list()
        parts = (_records(store, page, ex.reasoning) for page in _pages(store, "_shard_order", ex.shard_rows))
        export_id = f"export-{run_id}"
        target = {"tokenizer": tokenizer, "max_seq_len": ex.max_seq_len, "reasoning": ex.reasoning} if template else None
        manifest = write_shards(parts, out_dir, export_id, run_id, config.config_hash(), ex.shard_rows,
                                selection.shortfall, total_rows=total, file_format=ex.file_format,
                                band_edges=config.rebalance.band_edges, run_ids=runs, target=target,
                                rejected=_reject_counts(rejects), selection_digest=digest)
        store.insert_many({
            "exports": pl.DataFrame([{
                "export_id": export_id, "run_id": run_id, "created_at": now(), "out_dir": str(out_dir / export_id),
                "config_hash": manifest.config_hash, "manifest": manifest.model_dump_json(),
            }]),
            "selections": f"SELECT '{export_id}' AS export_id, sample_id, domain, difficulty, reason FROM _chosen",
            "export_rejects": rejects.with_columns(export_id=pl.lit(export_id)),
            "shards": pl.DataFrame([f.model_dump() | {"export_id": export_id} for f in manifest.shards]),
        })
        return manifest
    finally:
        for table in ("_kept", "_passed", "_todo", "_chosen", "_shard_order"):
            store.con.execute(f"DROP TABLE IF EXISTS {table}")


def _reject_counts(rejects: pl.DataFrame) -> dict[str, int]:
    """Rejects per kind of reason ("too long: 5123 tokens > ..." counts as "too long")."""
    kinds = rejects.select(kind=pl.col("reason").str.split(":").list.first())
    return dict(kinds.group_by("kind").len().sort("kind").iter_rows())


def manifest_digest(manifest: ShardManifest) -> str:
    return stable_hash(json.loads(manifest.model_dump_json(exclude={"created_at"})))


def run(ctx: StageContext) -> StageReport:
    """Rebalance the kept samples and write a shard set to options["out"]; with
    options["skip_unchanged"], nothing when the newest export is still current. With agentic
    enabled, the kept trajectories too, as a trace shard set of their own (pipeline/export/traces.py)."""
    out, skip = Path(ctx.options.get("out", "out")), ctx.options.get("skip_unchanged", False)
    manifest = select_and_export(ctx.store, ctx.config, ctx.run_id, out, skip_unchanged=skip)
    if manifest is None:
        current = latest_export(ctx.store)[0]
        counts = {"status": f"unchanged, export {current} still current", "export_id": current}
    else:
        counts = {"status": "new shard set", "export_id": manifest.export_id, "rows": manifest.total_rows,
                  "by_domain": manifest.counts_by_domain, "shortfall": [s.model_dump() for s in manifest.shortfall]}
    notes = [f"[export] {counts['status']}: {counts['export_id']}"]
    if ctx.config.agentic.enabled:
        counts["traces"] = _export_traces(ctx, out, skip)
        notes.append(f"[export] traces: {counts['traces']['status']}: {counts['traces']['export_id']}")
    return StageReport(counts, notes)


def _export_traces(ctx: StageContext, out: Path, skip: bool) -> dict:
    from pipeline.export.traces import export_traces, latest_trace_export

    manifest = export_traces(ctx.store, ctx.config, ctx.run_id, out, skip_unchanged=skip)
    if manifest is None:
        current = latest_trace_export(ctx.store)[0]
        return {"status": f"unchanged, export {current} still current", "export_id": current}
    return {"status": "new shard set", "export_id": manifest.export_id, "rows": manifest.total_rows,
            "by_environment": manifest.counts_by_environment, "rejected": manifest.rejected,
            "not_kept": manifest.not_kept, "shortfall": [s.model_dump() for s in manifest.shortfall]}
