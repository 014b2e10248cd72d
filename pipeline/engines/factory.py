"""Build the configured engine; the in-process vLLM engine is loaded once per process, and
only when something is actually sent to it (a resumed run with nothing left to generate
or judge never loads the model)."""

from __future__ import annotations

import os

from pipeline.engines.base import ChatRequest, ChatResult, Engine, ProgressFn
from schemas.config import EngineConfig

_loaded: dict[str, Engine] = {}


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
        return self.unwrap().chat(requests, on_progress)


def make_engine(config: EngineConfig, announce=print) -> Engine:
    return LazyEngine(config.model, lambda: _build(config, announce))


def _build(config: EngineConfig, announce) -> Engine:
    if config.kind == "openai":
        if not config.base_url:
            raise ValueError("engine.base_url is required for kind: openai (e.g. http://127.0.0.1:8000/v1)")
        from pipeline.engines.openai_http import OpenAIEngine

        return OpenAIEngine(
            config.base_url, config.model, api_key=os.environ.get(config.api_key_env),
            max_concurrency=config.max_concurrency, timeout_s=config.timeout_s,
            max_retries=config.max_retries, supports_prefill=config.server_supports_prefill,
        )
    key = config.model_dump_json()
    if key not in _loaded:
        from pipeline.model_bootstrap import resolve_model
        from pipeline.engines.vllm_local import VllmEngine

        path = resolve_model(config.model, announce=announce)
        announce(f"Loading {config.model} into vLLM (in-process) ...")
        _loaded[key] = VllmEngine(
            path, model_name=config.model, dtype=config.dtype, max_model_len=config.max_model_len,
            enforce_eager=config.enforce_eager, seed=config.seed, **config.vllm_args,
        )
    return _loaded[key]
