"""`curate query`'s table output, fitted to the terminal's width: a table whose widest columns
are cut (…) when that leaves every header whole and every column a few characters; otherwise
one block per row (`column  value` lines), values cut at the width. Numbers are shortened
(4 significant digits below 1,000, one decimal above; whole numbers whole) and newlines shown as ⏎, so a row stays one line. csv/json print
everything as it is (curate/cli.py)."""

from __future__ import annotations

import datetime
import decimal
import json
import math

import polars as pl
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

MAX_CELL = 60       # a column never wider than this in a table
MIN_CELL = 8        # nor narrower than this (or its header) when it has that much to show
ELLIPSIS = "…"


def cell(value) -> str:
    """One value as one short line."""
    if value is None:
        return ""
    if isinstance(value, (float, decimal.Decimal)) and math.isfinite(value):
        if value == int(value) and abs(value) < 1e15:  # counts (DuckDB sums are decimals) stay whole
            return str(int(value))
        return f"{value:.1f}" if 1000 <= abs(value) < 1e15 else f"{float(value):.4g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat(sep=" ", timespec="seconds") if isinstance(value, datetime.datetime) else value.isoformat()
    if isinstance(value, (list, dict)):
        value = json.dumps(value, default=str, ensure_ascii=False)
    return str(value).replace("\r\n", "⏎").replace("\n", "⏎").replace("\t", " ")


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def column_widths(headers: list[str], rows: list[list[str]], width: int) -> list[int] | None:
    """Widths that fit a table into `width` characters (borders included), or None when even
    the narrowest allowed columns do not fit (then rows are printed as blocks)."""
    natural = [min(MAX_CELL, max([len(h)] + [len(r[i]) for r in rows])) for i, h in enumerate(headers)]
    floors = [max(len(h), min(n, MIN_CELL)) for h, n in zip(headers, natural)]
    budget = width - (3 * len(headers) + 1)  # "│ " + " │ " between + " │"
    widths = natural[:]
    while sum(widths) > budget:
        shrinkable = [i for i, w in enumerate(widths) if w > floors[i]]
        if not shrinkable:
            return None
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def print_frame(frame: pl.DataFrame, console: Console) -> None:
    headers = frame.columns
    rows = [[cell(v) for v in row] for row in frame.iter_rows()]
    width = console.width
    widths = column_widths(headers, rows, width)
    if widths is not None:
        table = Table(box=box.HEAVY_HEAD, show_lines=False, pad_edge=True)
        for header, w in zip(headers, widths):
            table.add_column(header, width=w, no_wrap=True, overflow="ellipsis")
        for row in rows:
            table.add_row(*[Text(cut(v, w)) for v, w in zip(row, widths)])
        console.print(table)
        return
    key = min(max(len(h) for h in headers), width // 3)
    for n, row in enumerate(rows, 1):
        console.print(Text(f"── row {n} ".ljust(width, "─"), style="dim"))
        for header, value in zip(headers, row):
            console.print(Text(cut(f"{cut(header, key):<{key}}  {value}", width)), soft_wrap=True)
