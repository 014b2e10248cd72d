"""Headless Chromium for tests that look at pages: Debian's `chromium` (installed by `make setup`,
never a browser download) driven by Playwright through `executable_path`.

`chromium_page` is a fresh page (own cookies) whose console errors and uncaught page errors are
collected in `page.errors`; `viewer` serves `curate view` over a real store on a free port.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SCREENSHOTS = "CURATE_RECORD_SCREENSHOTS"  # set it to also write the README's screenshots to docs/
DOCS = Path(__file__).resolve().parents[2] / "docs"


def chromium_executable() -> str:
    path = os.environ.get("CURATE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("no chromium on PATH: `make test` (or `make browser`) installs Debian's chromium package "
                    "(apt-get install -y chromium), or set CURATE_CHROMIUM to a Chromium binary")
    return path


@pytest.fixture(scope="module")  # Playwright's sync API keeps an event loop running while open:
def chromium():                  # closed after each module, so later tests' asyncio.run() works
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def chromium_page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: page.errors.append(f"page error: {e}"))
    page.set_default_timeout(10_000)
    yield page
    context.close()


def screenshot(page, tmp_path: Path, name: str) -> Path:
    """A full-page PNG in the test's tmp folder (and in docs/ when CURATE_RECORD_SCREENSHOTS is set)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 10_000  # a blank page is a few hundred bytes
    if os.environ.get(SCREENSHOTS):
        DOCS.mkdir(exist_ok=True)
        shutil.copy(path, DOCS / f"{name}.png")
    return path


@dataclass
class Viewer:
    url: str      # with the token
    base: str     # without it
    token: str
    db: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def viewer_db(tmp_path_factory) -> Path:
    from tests.viewer.store_slice import build_with_planted

    return build_with_planted(tmp_path_factory.mktemp("viewer") / "curate.duckdb")


@pytest.fixture(scope="module")
def viewer(viewer_db):
    """`curate view`'s app served by uvicorn on 127.0.0.1 (a thread of this process)."""
    import uvicorn

    from pipeline.viewer.app import make_app

    token, port = secrets.token_urlsafe(24), free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(viewer_db, token, max_rows=100, timeout_s=5),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the viewer did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    yield Viewer(f"{base}/?token={token}", base, token, viewer_db)
    server.should_exit = True
    thread.join(timeout=10)
