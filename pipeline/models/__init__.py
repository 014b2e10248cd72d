"""Models shipped on PyPI, by alias: found in the installed packages, checked, converted once.

    resolve_model("qwen2.5-coder-1.5b-instruct")  ->  $CURATE_HOME/models/Qwen2.5-Coder-1.5B-Instruct

Any other value (an HF model folder, a served model name) is returned unchanged.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pipeline.models.assemble import ModelBootstrapError, shipped_gguf
from pipeline.models.gguf_to_hf import DONE_MARKER, convert_gguf
from pipeline.models.shipped import DEFAULT_MODEL, SHIPPED, SMALL_MODEL, ShippedModel
from pipeline.runtime_env import curate_home

__all__ = ["DEFAULT_MODEL", "SHIPPED", "SMALL_MODEL", "ModelBootstrapError", "converted", "model_folder",
           "resolve_model"]


def model_folder(model: ShippedModel) -> Path:
    return curate_home() / "models" / model.name


def converted(model: ShippedModel) -> bool:
    """Converted from exactly this GGUF (the marker records its sha256)."""
    marker = model_folder(model) / DONE_MARKER
    if not marker.exists():
        return False
    try:
        done = json.loads(marker.read_text())
    except ValueError:
        return False
    # Folders converted before the marker carried a hash (SmolLM2 only) stay valid.
    return done.get("gguf_sha256", model.sha256) == model.sha256


def resolve_model(model: str, announce=print) -> str:
    """The HF folder for a shipped model's alias (converted on first use); anything else unchanged."""
    shipped = SHIPPED.get(model)
    if shipped is None:
        return model
    target = model_folder(shipped)
    if not converted(shipped):
        started = time.perf_counter()
        gguf = shipped_gguf(shipped, target.parent, announce=announce)
        announce(f"Converting {shipped.alias} to an HF folder at {target}, tensor by tensor - once ...")
        convert_gguf(gguf, target, source={"alias": shipped.alias, "gguf_sha256": shipped.sha256})
        if len(shipped.parts) > 1:
            gguf.unlink(missing_ok=True)  # the parts stay installed; the folder is what vLLM loads
        announce(f"Converted {shipped.alias} in {time.perf_counter() - started:.0f} s")
    return str(target)
