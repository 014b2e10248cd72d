"""How the viewer reads the store: one read-only connection per request, opened through the same
guarded path as `curate query` (pipeline/read_only_query.py: external access off, configuration
locked) and closed when the request ends.

DuckDB lets one process write a file only while no other process has it open, and a run's
stages open and close their own connections. So the viewer never keeps the file open between
requests, and does not open it at all while a `curate run` holds the run lock (`<db>.lock`,
pipeline/run_lock.py): a page then says a run is writing, instead of making the run's next
stage fail on a locked file.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.read_only_query import QueryRefused, connect


class RunInProgress(QueryRefused):
    """A `curate run` is writing the database: the viewer stays out of its way."""


def run_in_progress(db: Path) -> bool:
    """True while a process holds the run lock beside the database (checked, never taken)."""
    lock = Path(f"{db}.lock")
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def check_free(db: Path) -> None:
    if run_in_progress(db):
        raise RunInProgress(f"{db} is being written by a running `curate run`; the viewer reads it again "
                            "when the run has finished (reload the page then)")


@contextmanager
def reading(db: Path):
    """A read-only, locked-down connection for one request."""
    check_free(db)
    con = connect(db)
    try:
        yield con
    finally:
        con.close()


@dataclass
class ReadOnlyStore:
    """The part of pipeline.store.Store that the BM25 index (pipeline/misalignment/trace/lexical.py)
    reads, over a viewer connection: the file's path, the connection, table counts."""

    path: Path
    con: duckdb.DuckDBPyConnection

    def count(self, table: str) -> int:
        return self.con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0]
