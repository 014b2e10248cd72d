"""Process-wide environment defaults, applied before vLLM, torch or Prefect are imported.

Everything these libraries cache (Prefect's database, vLLM's sockets and compile caches, the
converted model) goes under one project folder, ``CURATE_HOME`` (default ``./.curate``), so a
run leaves nothing in /tmp or ~/.cache and never reaches for a model hub.
"""

from __future__ import annotations

import os
from pathlib import Path


def curate_home() -> Path:
    return Path(os.environ.get("CURATE_HOME", ".curate")).resolve()


def apply_defaults() -> Path:
    """Set environment defaults (never overriding what the user set) and return CURATE_HOME."""
    home = curate_home()
    defaults = {
        # Offline by contract: nothing is fetched from a hub at run time.
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(home / "hf"),
        # vLLM in-process (no spawned engine core), both cores, small KV cache, caches local.
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "VLLM_CACHE_ROOT": str(home / "vllm"),
        "VLLM_RPC_BASE_PATH": str(home / "vllm-rpc"),
        "VLLM_NO_USAGE_STATS": "1",
        "VLLM_LOGGING_LEVEL": "ERROR",  # its CPU warnings (tcmalloc, triton, ...) are noise here
        "TORCHINDUCTOR_CACHE_DIR": str(home / "inductor"),
        "TOKENIZERS_PARALLELISM": "false",
        # Prefect: temporary local server, state kept in the project, no telemetry.
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Nested Prefect settings do not follow PREFECT_HOME: they would land in ~/.prefect.
        "PREFECT_SERVER_MEMO_STORE_PATH": str(home / "prefect" / "memo_store.toml"),
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "prefect" / "storage"),
        # The first start of the temporary server migrates its database: 20 s is too tight here.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        # Run logs (INFO) still reach the Prefect API and UI; the console shows warnings only.
        "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "INFO",
        "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "INFO",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
        "DO_NOT_TRACK": "1",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    for sub in ("vllm", "vllm-rpc", "inductor", "prefect", "hf", "models"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    return home
