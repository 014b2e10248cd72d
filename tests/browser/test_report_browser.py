"""`curate report`'s file in headless Chromium: every figure with rows draws an SVG, nothing is
fetched from the network, no console or page error; a screenshot (docs/report.png when recording)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app
from tests.browser.conftest import screenshot
from tests.report.report_html import figures
from tests.report.report_store import build


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report-browser")
    db = build(tmp / "store.duckdb", tmp / "out")
    out = tmp / "report.html"
    result = CliRunner().invoke(app, ["report", "--db", str(db), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def test_every_figure_renders_offline(chromium_page, report_file: Path, tmp_path: Path):
    page = chromium_page
    fetched = []

    def only_the_file(route):
        if not route.request.url.startswith("file://"):
            fetched.append(route.request.url)
            return route.abort()
        return route.continue_()

    page.route("**/*", only_the_file)
    page.goto(report_file.as_uri())
    drawn = {key: fig for key, fig in figures(report_file).items() if fig["rows"] > 0}
    assert len(drawn) >= 10
    for key in drawn:
        svg = page.locator(f"#chart-{key} svg")
        svg.first.wait_for(state="attached")
        assert svg.count() >= 1, key
        assert page.locator(f"#chart-{key} svg .mark-rect, #chart-{key} svg .mark-symbol, "
                            f"#chart-{key} svg .mark-line, #chart-{key} svg .mark-text, "
                            f"#chart-{key} svg .mark-rule").count() >= 1, key  # marks, not an empty frame
    for key, fig in figures(report_file).items():
        if fig["rows"] == 0:  # says so instead of drawing
            assert page.locator(f"#chart-{key} svg").count() == 0 and page.locator(f"#fig-{key}").count() == 1
    assert fetched == [] and page.errors == []
    screenshot(page, tmp_path, "report")
