"""Parquet parts: how verdicts computed away from the database come back into it.

Layout, beside the database:  <db>.parts/<run_id>/<stage>/part-<attempt>-00012.parquet
(verdict rows with the columns of pipeline/verdicts.py VERDICT_SCHEMA; <attempt> is new
for every call of a stage, so a task still running from a failed attempt never overwrites a
part of the next one).

Workers never open the DuckDB file: DuckDB allows one read-write process per file (a second
process gets a lock error; several writers would need a server DuckDB does not have), and the
run already holds it. So workers write parts and only the coordinator, the run's process,
ingests them.

* A part is written under a temporary name and renamed when complete: a killed worker
  leaves no half part (a stray *.tmp is ignored and swept).
* Ingest reads many parts in one INSERT, in one transaction, skipping rows whose key (the
  verdicts table's primary key: sample, rule, version, config hash) is stored already, then
  deletes the files. Killed between
  the commit and the delete, the next ingest of the same part adds nothing.
* Parts left by a killed run are ingested by the next run of the stage before it lists its
  todo (so what they hold is not computed again).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.verdicts import VERDICT_SCHEMA
from pipeline.store import Store

_COLUMNS = list(VERDICT_SCHEMA)


def parts_root(db: str | Path) -> Path:
    return Path(f"{Path(db).resolve()}.parts")


def new_attempt() -> str:
    return uuid.uuid4().hex[:8]


def part_path(db: str | Path, run_id: str, stage: str, index: int, attempt: str = "0") -> Path:
    return parts_root(db) / run_id / stage / f"part-{attempt}-{index:05d}.parquet"


def write_part(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write verdict rows atomically (temporary name, then rename)."""
    path = Path(path)
    missing = [c for c in _COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"verdict part {path}: missing column(s) {missing}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.select(_COLUMNS).cast(VERDICT_SCHEMA).write_parquet(tmp)
    os.replace(tmp, path)
    return path


def pending_parts(db: str | Path, stage: str) -> list[Path]:
    """Complete parts of this stage not ingested yet, from every run."""
    return sorted(parts_root(db).glob(f"*/{stage}/part-*.parquet"))


@dataclass
class Tally:
    """Verdict rows an ingest stored that were not there before, for one (rule, config_hash)."""
    new: int = 0
    failed: int = 0


def _check_schema(path: Path) -> None:
    try:
        schema = pl.read_parquet_schema(path)
    except Exception as exc:  # noqa: BLE001 - name the file, whatever the reader says
        raise ValueError(f"verdict part {path} cannot be read: {exc}") from exc
    wrong = {c: str(schema.get(c)) for c, t in VERDICT_SCHEMA.items() if schema.get(c) != t}
    if wrong:
        raise ValueError(f"verdict part {path}: unexpected column types {wrong}; expected {VERDICT_SCHEMA}")


def _key_columns(store: Store) -> list[str]:
    rows = store.con.sql("""SELECT constraint_column_names FROM duckdb_constraints()
                            WHERE table_name = 'verdicts' AND constraint_type = 'PRIMARY KEY'""").fetchall()
    if not rows:
        raise ValueError(f"{store.path}: the verdicts table has no primary key to ingest parts by")
    return list(rows[0][0])


def ingest_parts(store: Store, paths: list[Path]) -> dict[tuple[str, str], Tally]:
    """Insert the parts' verdicts in one transaction, new keys only; delete the files after the
    commit. Returns new rows per (rule, config_hash)."""
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(
                f"verdict part {path} is not visible to the coordinator: on a multi-node cluster put "
                f"{parts_root(store.path)} on storage every node mounts at the same path")
        _check_schema(path)
    tallies: dict[tuple[str, str], Tally] = {}
    if paths:
        cols = ", ".join(f'"{c}"' for c in _COLUMNS)
        key = _key_columns(store)
        same_key = " AND ".join(f'v."{c}" = p."{c}"' for c in key)
        con = store.con
        con.execute("BEGIN TRANSACTION")
        try:
            # New keys only; a key twice among the parts (two runs' leftovers) counts once.
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE _incoming_parts AS
                SELECT {cols} FROM read_parquet(?) p
                WHERE NOT EXISTS (SELECT 1 FROM verdicts v WHERE {same_key})
                QUALIFY row_number() OVER (PARTITION BY {", ".join(key)} ORDER BY created_at) = 1
            """, [[str(p) for p in paths]])
            con.execute(f"INSERT INTO verdicts ({cols}) SELECT {cols} FROM _incoming_parts")
            rows = con.execute("""SELECT rule, config_hash, count(*), count(*) FILTER (WHERE NOT passed)
                                  FROM _incoming_parts GROUP BY rule, config_hash""").fetchall()
            con.execute("DROP TABLE _incoming_parts")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        tallies = {(rule, config_hash): Tally(new, failed) for rule, config_hash, new, failed in rows}
    for path in paths:
        path.unlink(missing_ok=True)
    return tallies


def sweep(db: str | Path) -> None:
    """Remove stray temporary files (half parts of killed workers) and empty folders. Called when
    a stage has finished: no worker of this database is writing then (one run at a time)."""
    root = parts_root(db)
    if not root.exists():
        return
    for tmp in root.rglob("*.tmp"):
        tmp.unlink(missing_ok=True)
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    if not any(root.iterdir()):
        root.rmdir()


def merge(into: dict, more: dict) -> dict:
    for key, t in more.items():
        mine = into.setdefault(key, Tally())
        mine.new += t.new
        mine.failed += t.failed
    return into
