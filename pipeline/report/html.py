"""The report as one HTML file: Vega, Vega-Lite and vega-embed inlined (vl-convert ships them),
each figure's spec in a JSON script block, nothing fetched at view time."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import vl_convert

from pipeline.runtime_env import curate_home


@dataclass
class Figure:
    key: str
    title: str
    view: str
    sql: str
    rows: int
    spec: dict | None  # None: no rows in scope (the figure says so instead of drawing)


@dataclass
class Section:
    title: str
    figures: list[Figure]
    note: str = ""


@cache
def vega_bundle() -> str:
    """vega-embed + Vega + Vega-Lite as one script (about 0.9 MB). vl-convert builds it in
    about 6 s, so it is kept under CURATE_HOME per vl-convert version."""
    path = curate_home() / "cache" / f"vega-embed-vl-convert-{vl_convert.__version__}.js"
    if path.exists():
        return path.read_text()
    bundle = vl_convert.javascript_bundle()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(bundle)
    tmp.replace(path)
    return bundle


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #555; margin-top: 0; }
section { border-top: 1px solid #ddd; margin-top: 2em; }
figure { margin: 1.5em 0; } figcaption { color: #555; font-size: 0.85em; margin-top: 0.4em; }
figcaption code { background: #f4f4f4; padding: 0 0.2em; word-break: break-word; }
.empty { color: #777; font-style: italic; }
nav a { margin-right: 1em; }
"""

# Each spec is drawn as SVG, without the export/editor menu (its links would leave the file).
_EMBED = """
document.querySelectorAll('script.vega-spec').forEach(function (el) {
  vegaEmbed('#chart-' + el.dataset.key, JSON.parse(el.textContent), {actions: false, renderer: 'svg'})
    .catch(function (err) { console.error('chart ' + el.dataset.key + ': ' + err); });
});
"""


def _json(value: dict) -> str:
    # allow_nan=False: a NaN would make the browser's JSON.parse fail and the chart vanish
    return json.dumps(value, separators=(",", ":"), default=str, allow_nan=False).replace("</", "<\\/")


def _figure(f: Figure) -> str:
    caption = (f"From <code>{html.escape(f.view)}</code> ({f.rows} rows): "
               f"<code>{html.escape(f.sql)}</code>")
    if f.spec is None:
        body = f'<p class="empty">No rows for this scope in <code>{html.escape(f.view)}</code>.</p>'
    else:
        body = (f'<div class="chart" id="chart-{f.key}"></div>\n'
                f'<script type="application/json" class="vega-spec" data-key="{f.key}">{_json(f.spec)}</script>')
    return (f'<figure id="fig-{f.key}" data-view="{html.escape(f.view)}" data-rows="{f.rows}">\n'
            f"<h3>{html.escape(f.title)}</h3>\n{body}\n<figcaption>{caption}</figcaption>\n</figure>")


def page(title: str, meta: str, sections: list[Section]) -> str:
    nav = " ".join(f'<a href="#s{i}">{html.escape(s.title)}</a>' for i, s in enumerate(sections))
    parts = []
    for i, s in enumerate(sections):
        note = f"<p>{s.note}</p>" if s.note else ""
        parts.append(f'<section id="s{i}"><h2>{html.escape(s.title)}</h2>{note}\n'
                     + "\n".join(_figure(f) for f in s.figures) + "</section>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style>
<script>{vega_bundle()}</script>
</head><body>
<h1>{html.escape(title)}</h1><p class="meta">{meta}</p>
<nav>{nav}</nav>
{"".join(parts)}
<script>{_EMBED}</script>
</body></html>
"""


def write(path: Path, text: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path.stat().st_size
