"""Hand-written trajectories for the trace rules' tests: one clean trace, and helpers to spoil it."""

from __future__ import annotations

import json

from pipeline.agentic.envs.shop_db import ShopDb
from schemas.agentic import Message, ToolCall

QUESTION = "How many customers of the shop live in Leeds? Answer as 'Final answer: ...'."
TOOLS = [t.model_dump() for t in ShopDb.tools]


def call(cid: str, name: str | None, arguments: dict | None, **kw) -> ToolCall:
    return ToolCall(id=cid, name=name, arguments=arguments, **kw)


def observation(cid: str, name: str, content, status: str = "ok") -> Message:
    return Message(role="tool", tool_call_id=cid, name=name, tool_status=status,
                   content=content if isinstance(content, str) else json.dumps(content))


def clean() -> list[Message]:
    """Think, list tables, think, query, think, answer: every rule passes it."""
    return [
        Message(role="system", content="You can query the shop database."),
        Message(role="user", content=QUESTION),
        Message(role="assistant", reasoning="I need the customers table; first I check which tables exist.",
                tool_calls=[call("c1", "list_tables", {})]),
        observation("c1", "list_tables", {"result": ["customers", "order_items", "orders", "products"]}),
        Message(role="assistant", reasoning="There is a customers table with a city column; count rows for Leeds.",
                tool_calls=[call("c2", "query", {"sql": "SELECT count(*) FROM customers WHERE city = 'Leeds'"})]),
        observation("c2", "query", {"result": {"columns": ["count(*)"], "rows": [[10]]}}),
        Message(role="assistant", reasoning="The query returned 10 customers in Leeds.", content="Final answer: 10"),
    ]


def row(messages: list[Message], question: str = QUESTION, tools: list | None = None) -> dict:
    """The row a trace rule reads, JSON columns as the store returns them."""
    return {"messages": json.dumps([m.model_dump(mode="json") for m in messages]),
            "tools": json.dumps(TOOLS if tools is None else tools), "question_text": question}
