"""Build the configured engine; the in-process vLLM engine is loaded once per process."""

from __future__ import annotations

import os

from pipeline.engines.base import Engine
from schemas.config import EngineConfig

_loaded: dict[str, Engine] = {}


def make_engine(config: EngineConfig, announce=print) -> Engine:
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
