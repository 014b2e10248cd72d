"""Full-text search over samples (question, reasoning, answer): BM25 with the index the bad-case
tracer keeps beside the database (pipeline/misalignment/trace/lexical.py, `<db>.trace/bm25/`),
built on the first search and rebuilt only when the set of samples changed.

Why not DuckDB's fts extension: it is not built into the duckdb 2.0.0 wheel, `INSTALL fts`
downloads it from DuckDB's extension site (no network here; the read-only connections also
turn extension autoload and autoinstall off), the `duckdb-ext-fts` wheel on PyPI is built for
DuckDB 1.4.4 (an extension loads only into the DuckDB version it was built for), and
`PRAGMA create_fts_index` writes its index into the database, which the viewer opens read-only.
"""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from pipeline.misalignment.trace.lexical import lexical_candidates
from pipeline.viewer.db import ReadOnlyStore

MAX_HITS = 500
_building = threading.Lock()  # requests run in threads: one builds a missing index, the others wait for it


def search(con: duckdb.DuckDBPyConnection, db: Path, text: str, top: int = MAX_HITS) -> list[str]:
    """Sample ids matching `text`, best first (words of two letters or more; stop words ignored)."""
    with _building:
        hits = lexical_candidates(ReadOnlyStore(Path(db), con), text, top=top)
    return hits["sample_id"].to_list()
