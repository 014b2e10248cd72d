"""Reading a written report back: its figures, their specs and the rows each chart draws."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

_SPEC = re.compile(r'<script type="application/json" class="vega-spec" data-key="(\w+)">(.*?)</script>', re.S)
_FIGURE = re.compile(r'<figure id="fig-(\w+)" data-view="([^"]+)" data-rows="(\d+)">(.*?)</figure>', re.S)
_CAPTION_SQL = re.compile(r"\): <code>(.*?)</code></figcaption>", re.S)


def figures(path: Path) -> dict[str, dict]:
    """key -> {view, rows, sql (the caption's), spec (None when the figure has no rows)}."""
    text = path.read_text()
    specs = {key: json.loads(body) for key, body in _SPEC.findall(text)}
    found = {}
    for key, view, rows, body in _FIGURE.findall(text):
        sql = _CAPTION_SQL.search(body)
        found[key] = {"view": html.unescape(view), "rows": int(rows), "spec": specs.get(key),
                      "sql": html.unescape(sql.group(1)) if sql else None}
    return found


def drawn_rows(spec: dict) -> list[dict]:
    """The rows a chart draws: its one inline dataset (layers and facets share it)."""
    datasets = spec.get("datasets", {})
    assert len(datasets) == 1, f"expected one dataset, got {list(datasets)}"
    return next(iter(datasets.values()))
