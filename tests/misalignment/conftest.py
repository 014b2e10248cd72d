"""The loop's store (loop_store.build: real GSM8K samples, real cheap-rule verdicts), built once
per test module; each test gets its own copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.misalignment.loop_store import build


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("loop") / "store.duckdb")


@pytest.fixture()
def db(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store.duckdb"
    shutil.copy(built, copy)
    return copy
