"""Generated questions about the shop database, each with a reference query whose result, run on
the environment's own data, is the ground truth.

    tasks = generate(seed=7, n=20)   # the same seed, the same tasks

Templates: count, sum, average, top-k, join. Each draws its parameters from the seed and
writes the reference query; a draw whose answer is empty, or ambiguous (a tie at a top-k cut),
is skipped and the next draw is taken. Answers are written the way the question asks (an
integer, cents as an integer, two decimals, names joined by ", ").
"""

from __future__ import annotations

import random
from collections.abc import Callable

from pipeline.agentic.envs.shop_db import ShopDb
from pipeline.hashing import seed_from
from schemas.agentic import Task, Verification

GENERATOR = "shop_db_questions@1"
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
_FINAL = " Answer with the value alone on the last line as 'Final answer: ...'."


def _values(db: ShopDb, sql: str) -> list:
    return [r[0] for r in db._execute(sql)[1]]


def _count(rng: random.Random, db: ShopDb):
    city = rng.choice(_values(db, "SELECT DISTINCT city FROM customers ORDER BY city"))
    return (f"How many customers of the shop live in {city}?",
            f"SELECT count(*) FROM customers WHERE city = '{city}'", "int")


def _sum(rng: random.Random, db: ShopDb):
    month = rng.randrange(1, 13)
    return (f"What was the shop's revenue (quantity times the price paid) from orders placed in {MONTHS[month - 1]} "
            "2025, excluding cancelled orders? Give it in cents.",
            "SELECT sum(i.quantity * i.unit_price_cents) FROM order_items i JOIN orders o ON o.id = i.order_id "
            f"WHERE strftime('%m', o.order_date) = '{month:02d}' AND o.status <> 'cancelled'", "int")


def _average(rng: random.Random, db: ShopDb):
    category = rng.choice(_values(db, "SELECT DISTINCT category FROM products ORDER BY category"))
    return (f"What is the average list price, in dollars rounded to two decimals, of the products in the "
            f"'{category}' category?",
            f"SELECT printf('%.2f', avg(price_cents) / 100.0) FROM products WHERE category = '{category}'", "text")


def _top_k(rng: random.Random, db: ShopDb):
    k = rng.randint(2, 4)
    sql = ("SELECT p.name, sum(i.quantity) AS units FROM order_items i JOIN products p ON p.id = i.product_id "
           "JOIN orders o ON o.id = i.order_id WHERE o.status <> 'cancelled' "
           "GROUP BY p.name ORDER BY units DESC, p.name")
    ranked = db._execute(sql)[1]
    if len(ranked) > k and ranked[k - 1][1] == ranked[k][1]:
        return None  # a tie at the cut: the question would have two right answers
    return (f"Which {k} products sold the most units in orders that were not cancelled? List their names, "
            "most units first, separated by commas.", f"{sql} LIMIT {k}", "names")


def _join(rng: random.Random, db: ShopDb):
    city = rng.choice(_values(db, "SELECT DISTINCT city FROM customers ORDER BY city"))
    status = rng.choice(["delivered", "shipped", "cancelled"])
    return (f"How many {status} orders were placed by customers living in {city}?",
            "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id "
            f"WHERE c.city = '{city}' AND o.status = '{status}'", "int")


TEMPLATES: dict[str, Callable] = {"count": _count, "sum": _sum, "average": _average, "top_k": _top_k,
                                  "join": _join}


def answer_text(rows: list[tuple], kind: str) -> str | None:
    if not rows or rows[0][0] is None:
        return None
    if kind == "names":
        return ", ".join(str(r[0]) for r in rows)
    return str(rows[0][0])


def generate(seed: int, n: int, templates: list[str] | None = None, db: ShopDb | None = None) -> list[Task]:
    """n tasks (templates in turn), deterministic in seed."""
    names = templates or list(TEMPLATES)
    unknown = sorted(set(names) - set(TEMPLATES))
    if unknown:
        raise KeyError(f"unknown question templates {unknown}; known: {sorted(TEMPLATES)}")
    own = db is None
    db = db or ShopDb()
    tasks: list[Task] = []
    seen: set[str] = set()
    try:
        draw = 0
        while len(tasks) < n and draw < 50 * n:
            template = names[draw % len(names)]
            task_seed = seed_from(GENERATOR, seed, draw)
            draw += 1
            made = TEMPLATES[template](random.Random(task_seed), db)
            if made is None:
                continue
            text, sql, kind = made
            answer = answer_text(db._execute(sql)[1], kind)
            if answer is None or text in seen:
                continue
            seen.add(text)
            tasks.append(Task(source="generated", generator=GENERATOR, generator_seed=task_seed, domain="data",
                              text=text + _FINAL, environment=ShopDb.ref(),
                              tools=[t.name for t in ShopDb.tools],
                              verification=Verification(kind="db_answer", reference=answer, reference_query=sql)))
    finally:
        if own:
            db.close()
    return tasks
