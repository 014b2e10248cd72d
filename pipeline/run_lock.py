"""One run per database at a time: an exclusive lock file beside the DuckDB file.

Stages open and close their own connections, so DuckDB's own file lock is not held for a
whole run; this lock is. The OS drops it when the process dies, so a killed run never
leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from pipeline.store import StoreLockedError


@contextmanager
def run_lock(db: str | Path):
    path = Path(f"{db}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise StoreLockedError(f"{db} is being written by a running `curate run` (pid {holder}); "
                                   "wait for it to finish or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
