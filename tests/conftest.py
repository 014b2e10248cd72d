"""Shared test setup: project-local caches, the real vLLM engine (loaded once), Prefect."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Caches (converted model, vLLM, Prefect) live in the repository, shared with `make run`.
os.environ.setdefault("CURATE_HOME", str(ROOT / ".curate"))

from pipeline.runtime_env import apply_defaults  # noqa: E402

apply_defaults()

DATA = ROOT / "data"  # shipped pools, labels and benchmarks (see data/README.md)


@pytest.fixture(scope="session")
def vllm_engine():
    """The small model (SmolLM2-135M) on the in-process vLLM CPU engine (about 30 s to load): the
    engine tests' model; one slow test runs the 1.5B default end to end (tests/engines/test_default_model.py)."""
    from pipeline.engines.factory import make_engine
    from pipeline.models import SMALL_MODEL
    from schemas.config import EngineConfig

    return make_engine(EngineConfig(model=SMALL_MODEL), announce=lambda _m: None).unwrap()


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server for the session (state in a temp database)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
