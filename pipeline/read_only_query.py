"""Read-only SQL over the store, for `curate query` (and any viewer): a query reads the
database file and nothing else, and changes nothing.

Two independent walls:
1. One statement, and it must be a SELECT (`FROM t`, `WITH ...`, `SUMMARIZE t`, `DESCRIBE t`
   are SELECTs to DuckDB's parser). COPY, ATTACH, EXPORT/IMPORT DATABASE, INSTALL/LOAD, SET,
   PRAGMA, CALL, EXPLAIN (EXPLAIN ANALYZE runs its statement) and every write are refused by
   their statement type, before a connection exists.
2. The connection: the file opened read-only, with DuckDB's external access disabled (no
   read_text/read_csv/glob/http of other files, no ATTACH), extension autoload and autoinstall
   off, and the configuration locked (no SET can turn any of it back on).
A row limit and a time limit bound what one query may cost.
"""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import polars as pl

ALLOWED = {"SELECT"}
_CONFIG = {"enable_external_access": False, "autoload_known_extensions": False,
           "autoinstall_known_extensions": False, "allow_community_extensions": False,
           "lock_configuration": True}


class QueryRefused(ValueError):
    """A query that is not one read-only SELECT, or a file that is not a database to query."""


def checked_statement(sql: str) -> str:
    """The one SELECT in `sql` (comments and a trailing semicolon allowed); else QueryRefused."""
    if not sql or not sql.strip():
        raise QueryRefused("no SQL given: pass one SELECT, e.g. \"SELECT count(*) FROM samples\"")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"cannot parse the SQL: {exc}") from None
    if not statements:
        raise QueryRefused("no statement in the SQL (only comments?)")
    if len(statements) > 1:
        raise QueryRefused(f"one statement at a time: got {len(statements)} "
                           f"({', '.join(s.type.name for s in statements)})")
    kind = statements[0].type.name
    if kind not in ALLOWED:
        raise QueryRefused(f"`curate query` is read-only: {kind} statements are not allowed, only SELECT. "
                           "Change data with `curate run` (or open a copy of the file with duckdb yourself).")
    return statements[0].query


def connect(db: str | Path) -> duckdb.DuckDBPyConnection:
    """The database file, read-only, with external access off and the configuration locked."""
    path = Path(db)
    if not path.exists():
        raise QueryRefused(f"{path}: no such database (run `curate run` first)")
    if path.is_dir():
        raise QueryRefused(f"{path} is a directory; give the DuckDB file's path")
    try:
        return duckdb.connect(str(path), read_only=True, config=_CONFIG)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise QueryRefused(f"{path} is in use by a running curate run (DuckDB allows one writer); "
                               "query it when the run has finished") from None
        raise QueryRefused(f"{path} is not a DuckDB database this version can read ({exc})") from None
    except duckdb.Error as exc:
        raise QueryRefused(f"{path} cannot be opened as a DuckDB database ({exc})") from None


def run_query(db: str | Path, sql: str, max_rows: int = 10_000, timeout_s: float = 60) -> tuple[pl.DataFrame, bool]:
    """(rows, truncated): at most `max_rows` rows of one SELECT; interrupted after `timeout_s`.
    Raises QueryRefused for a refused statement or file, duckdb.Error for a failing query."""
    statement = checked_statement(sql)
    con = connect(db)
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        frame = con.sql(statement).limit(max_rows + 1).pl()
    except duckdb.InterruptException:
        raise QueryRefused(f"the query ran longer than {timeout_s:g} s and was stopped") from None
    finally:
        timer.cancel()
        con.close()
    return frame.head(max_rows), frame.height > max_rows
