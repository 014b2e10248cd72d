"""A small shop database (customers, products, orders, order_items) in SQLite, read-only, with the
tools list_tables, describe and query.

The data is shop.sql beside this file (made by build.py from a fixed seed). Each environment
loads it into its own in-memory database, then locks it down twice: `PRAGMA query_only` and an
authorizer that allows reading and nothing else (no INSERT/UPDATE/DELETE, DDL, ATTACH, PRAGMA
writes or transactions), so a query cannot change the state the next call sees. A progress
handler stops a query at its deadline (a runaway recursive CTE is a timeout observation), and
results are capped at `max_rows`.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

from pipeline.agentic.envs.base import Environment, Observation, ToolError, tool

SQL_FILE = Path(__file__).with_name("shop.sql")

# What a read may do (sqlite3 authorizer action codes); everything else is denied.
_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
_SAFE_PRAGMAS = {"table_info", "table_list", "foreign_key_list", "index_list"}


def _authorize(action, arg1, arg2, db_name, trigger):
    if action in _ALLOWED:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and arg1 in _SAFE_PRAGMAS:  # read-only pragmas (arg2: their table)
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


class _Deadline(Exception):
    pass


class ShopDb(Environment):
    name = "shop_db"
    version = 1
    tools = [
        tool("list_tables", "List the tables of the shop database.", {}),
        tool("describe", "Show a table's columns (name, type, nullable, primary key) and its row count.",
             {"table": {"type": "string", "minLength": 1, "description": "a table name from list_tables"}}),
        tool("query", "Run one read-only SQL SELECT (SQLite dialect) and return its columns and rows.",
             {"sql": {"type": "string", "minLength": 1, "maxLength": 4000, "description": "one SELECT statement"}}),
    ]

    def __init__(self, timeout_s: float = 2.0, max_rows: int = 50, sql_file: Path = SQL_FILE):
        self.timeout_s, self.max_rows = timeout_s, max_rows
        self.con = sqlite3.connect(":memory:", check_same_thread=False)
        self.con.executescript(sql_file.read_text(encoding="utf-8"))
        self._hash = self._content_hash()
        self.con.execute("PRAGMA query_only = ON")
        self.con.set_authorizer(_authorize)

    def close(self) -> None:
        self.con.close()

    def _content_hash(self) -> str:
        digest = hashlib.sha256()
        for line in self.con.iterdump():
            digest.update(line.encode("utf-8") + b"\n")
        return digest.hexdigest()[:16]

    def state_hash(self) -> str:
        """The database content's hash (read-only, so it never changes; db_state tasks check it)."""
        return self._hash

    # --- tools -----------------------------------------------------------------------------

    def tool_list_tables(self) -> list[str]:
        return [r[0] for r in self._execute("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")[1]]

    def tool_describe(self, table: str) -> dict:
        if table not in self.tool_list_tables():
            raise ToolError(f"no table {table!r}; tables: {self.tool_list_tables()}")
        _, info = self._execute(f'PRAGMA table_info("{table}")')
        _, count = self._execute(f'SELECT count(*) FROM "{table}"')
        return {"table": table, "rows": count[0][0],
                "columns": [{"name": r[1], "type": r[2], "nullable": not r[3], "primary_key": bool(r[5])}
                            for r in info]}

    def tool_query(self, sql: str) -> dict:
        columns, rows = self._execute(sql, cap=True)
        out = {"columns": columns, "rows": [list(r) for r in rows[:self.max_rows]]}
        if len(rows) > self.max_rows:
            out["truncated"] = f"showing {self.max_rows} of more rows; add LIMIT or aggregate"
        return out

    def _observe(self, handler, arguments: dict) -> Observation:
        try:
            return Observation("ok", content=handler(**arguments))
        except _Deadline:
            return Observation("timeout", error=f"query interrupted after {self.timeout_s:g} s")

    def _execute(self, sql: str, cap: bool = False) -> tuple[list[str], list[tuple]]:
        deadline = time.monotonic() + self.timeout_s
        timed_out = False

        def progress():
            nonlocal timed_out
            timed_out = time.monotonic() > deadline
            return 1 if timed_out else 0

        self.con.set_progress_handler(progress, 10_000)
        try:
            cursor = self.con.execute(sql)  # one statement only: sqlite3 refuses several
            rows = cursor.fetchmany(self.max_rows + 1) if cap else cursor.fetchall()
            return [d[0] for d in cursor.description or []], rows
        except sqlite3.Warning as exc:  # "You can only execute one statement at a time."
            raise ToolError(f"SQL error: {exc}") from None
        except sqlite3.DatabaseError as exc:
            if timed_out:
                raise _Deadline() from None
            message = str(exc)
            if "not authorized" in message or "readonly" in message or "query_only" in message:
                message += " (the database is read-only: SELECT only)"
            raise ToolError(f"SQL error: {message}") from None
        finally:
            self.con.set_progress_handler(None, 0)
