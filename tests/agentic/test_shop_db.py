"""The shop database environment: shipped data equal to its build script's, read-only however the
query is written, timeouts as observations; generated questions whose reference holds."""

from __future__ import annotations

import sqlite3
from collections import Counter

import pytest

from pipeline.agentic.envs.shop_db import SQL_FILE, ShopDb
from pipeline.agentic.envs.shop_db.build import build_sql
from pipeline.agentic.tasks.db_questions import TEMPLATES, generate


@pytest.fixture(scope="module")
def db():
    with ShopDb(timeout_s=1, max_rows=20) as env:
        yield env


def test_shipped_sql_is_what_the_build_script_makes():
    assert SQL_FILE.read_text(encoding="utf-8") == build_sql()
    assert SQL_FILE.stat().st_size < 1_000_000


def test_tools_list_describe_query(db):
    assert db.call("list_tables", {}).content == ["customers", "order_items", "orders", "products"]
    described = db.call("describe", {"table": "orders"}).content
    assert described["rows"] == 300
    assert [c["name"] for c in described["columns"]] == ["id", "customer_id", "order_date", "status"]
    assert db.call("query", {"sql": "SELECT count(*) AS n FROM customers"}).content == {"columns": ["n"],
                                                                                       "rows": [[60]]}
    many = db.call("query", {"sql": "SELECT id FROM orders"}).content
    assert len(many["rows"]) == 20 and "truncated" in many
    assert "no table 'nope'" in db.call("describe", {"table": "nope"}).error


@pytest.mark.parametrize("sql", ["DELETE FROM customers", "UPDATE products SET price_cents = 0",
                                 "DROP TABLE orders", "CREATE TEMP TABLE t(x)", "ATTACH ':memory:' AS other",
                                 "PRAGMA query_only = OFF", "INSERT INTO customers VALUES (99, 'x', 'y', 'z')",
                                 "BEGIN", "SELECT 1; DELETE FROM orders"])
def test_writes_are_error_observations_and_change_nothing(db, sql):
    before = db.state_hash()
    obs = db.call("query", {"sql": sql})
    assert obs.status == "error" and obs.error.startswith("SQL error")
    assert db.state_hash() == before
    assert db.call("query", {"sql": "SELECT count(*) FROM customers"}).content["rows"] == [[60]]


def test_runaway_query_is_a_timeout_observation(db):
    obs = db.call("query", {"sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                                   "SELECT count(*) FROM c"})
    assert obs.status == "timeout"
    assert db.call("query", {"sql": "SELECT 1"}).status == "ok"  # the connection still works


def test_bad_sql_and_arguments_are_observations(db):
    assert "syntax error" in db.call("query", {"sql": "SELEC 1"}).error
    assert "required property" in db.call("query", {"query": "SELECT 1"}).error
    assert "Additional properties" in db.call("list_tables", {"verbose": True}).error


def test_state_hash_is_the_data():
    other = build_sql(seed=17)
    assert ShopDb().state_hash() == ShopDb().state_hash()
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "other.sql"
        path.write_text(other)
        assert ShopDb(sql_file=path).state_hash() != ShopDb().state_hash()


def test_generated_questions_are_deterministic_and_cover_the_templates():
    a, b = generate(seed=3, n=10), generate(seed=3, n=10)
    assert [t.task_id for t in a] == [t.task_id for t in b]
    assert [t.task_id for t in generate(seed=4, n=10)] != [t.task_id for t in a]
    kinds = Counter(t.verification.reference_query.split()[1] for t in a)
    assert len(a) == 10 and len(kinds) >= 3
    assert all(t.environment == "shop_db@1" and t.verification.kind == "db_answer" for t in a)


def test_references_agree_with_the_data_read_independently():
    """Recompute each count question from the raw rows in Python (not by the reference query)."""
    con = sqlite3.connect(":memory:")
    con.executescript(SQL_FILE.read_text())
    customers = con.execute("SELECT id, city FROM customers").fetchall()
    orders = con.execute("SELECT customer_id, status FROM orders").fetchall()
    checked = 0
    for task in generate(seed=11, n=25, templates=["count", "join"]):
        city = task.text.split("living in " if "living in" in task.text else "live in ")[1].split("?")[0]
        ids = {i for i, c in customers if c == city}
        if task.text.startswith("How many customers"):
            expected = len(ids)
        else:
            status = task.text.split("How many ")[1].split(" orders")[0]
            expected = sum(1 for cid, s in orders if cid in ids and s == status)
        assert task.verification.reference == str(expected), task.text
        checked += 1
    assert checked == 25


def test_top_k_questions_skip_ties_at_the_cut():
    for task in generate(seed=5, n=8, templates=["top_k"]):
        k = int(task.text.split()[1])
        assert len(task.verification.reference.split(", ")) == k


def test_unknown_template_is_named():
    with pytest.raises(KeyError, match="known"):
        generate(seed=1, n=1, templates=["median"])
    assert set(TEMPLATES) == {"count", "sum", "average", "top_k", "join"}
