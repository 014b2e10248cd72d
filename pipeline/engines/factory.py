"""Build the configured engine; the in-process vLLM engine is loaded once per process, and
only when something is actually sent to it (a resumed run with nothing left to generate
or judge never loads the model).

Every engine made here counts what is sent to it, per process (engine_calls()): the proof
that a re-run makes no model calls, and a figure in each run's counts (pipeline/run_record.py).
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass

from pipeline.engines.base import ChatRequest, ChatResult, Engine, ProgressFn
from schemas.config import EngineConfig

_loaded: dict[str, Engine] = {}


@dataclass
class EngineCalls:
    batches: int = 0  # chat() calls that sent at least one request
    requests: int = 0  # chat requests (prompts) sent
    completions: int = 0  # completions asked for (the sum of each request's n)
    model_loads: int = 0  # in-process models loaded (vLLM) or clients made (openai)


_calls = EngineCalls()
_calls_lock = threading.Lock()  # Prefect runs tasks in threads


def engine_calls() -> dict[str, int]:
    """What this process has sent to engines made by make_engine so far."""
    with _calls_lock:
        return asdict(_calls)


def engine_calls_since(before: dict[str, int]) -> dict[str, int]:
    """The calls made since an earlier engine_calls() snapshot."""
    now = engine_calls()
    return {k: now[k] - before.get(k, 0) for k in now}


def _count(**increments: int) -> None:
    with _calls_lock:
        for key, n in increments.items():
            setattr(_calls, key, getattr(_calls, key) + n)


class LazyEngine(Engine):
    def __init__(self, model_name: str, load):
        self.model_name = model_name
        self._load = load
        self._engine: Engine | None = None

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def unwrap(self) -> Engine:
        """The real engine, loading it now if needed."""
        if self._engine is None:
            self._engine = self._load()
        return self._engine

    def chat(self, requests: list[ChatRequest], on_progress: ProgressFn | None = None) -> list[ChatResult]:
        if not requests:
            return []
        engine = self.unwrap()
        _count(batches=1, requests=len(requests), completions=sum(r.sampling.n for r in requests))
        return engine.chat(requests, on_progress)


def make_engine(config: EngineConfig, announce=print) -> Engine:
    return LazyEngine(config.model, lambda: _build(config, announce))


def _build(config: EngineConfig, announce) -> Engine:
    if config.kind == "openai":
        if not config.servers:
            raise ValueError("engine.base_url (or base_urls) is required for kind: openai "
                             "(e.g. http://127.0.0.1:8000/v1)")
        from pipeline.engines.openai_http import OpenAIEngine

        _count(model_loads=1)
        return OpenAIEngine(
            config.servers, config.model, api_key=os.environ.get(config.api_key_env),
            max_concurrency=config.max_concurrency, timeout_s=config.timeout_s,
            max_retries=config.max_retries, retry_wait_s=config.retry_wait_s,
            supports_prefill=config.server_supports_prefill,
        )
    key = config.model_dump_json()
    if key not in _loaded:
        from pipeline.models import resolve_model
        from pipeline.engines.vllm_local import VllmEngine

        path = resolve_model(config.model, announce=announce)
        announce(f"Loading {config.model} into vLLM (in-process) ...")
        _count(model_loads=1)
        _loaded[key] = VllmEngine(
            path, model_name=config.model, dtype=config.dtype, max_model_len=config.max_model_len,
            enforce_eager=config.enforce_eager, seed=config.seed, **config.vllm_args,
        )
    return _loaded[key]
