"""Convert a GGUF into a plain HF model folder that vLLM's CPU build loads, one tensor at a time.

vLLM 0.32 cannot load GGUF on CPU. transformers can dequantize a GGUF, but only into a whole
float32 model (a 1.5B model then needs ~15 GB). Here each tensor is dequantized with gguf's own
`dequantize`, renamed and reshaped with transformers' GGUF tables (the same mapping its loader
uses), cast to the target dtype and written to safetensors shards of at most `shard_bytes`:
memory holds the memory-mapped GGUF, one float32 tensor and one shard.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

CONVERTER_VERSION = 2  # 1: whole-model transformers dequantization (float32, two copies)
DONE_MARKER = "curate-converted.json"


def convert_gguf(gguf_path: Path, target: Path, *, dtype: str = "bfloat16", shard_bytes: int = 1 << 30,
                 source: dict | None = None, on_tensor: Callable[[int, int], None] | None = None) -> dict:
    """Write config, tokenizer and safetensors shards into `target` (built in a temporary
    folder, then renamed: never a half folder). Returns what the done marker records."""
    import numpy as np
    import torch
    from gguf import GGUFReader, dequantize
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import (
        TENSOR_PROCESSORS, TensorProcessor, get_gguf_hf_weights_map, load_gguf_checkpoint)

    torch_dtype = getattr(torch, dtype)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    folder, name = str(gguf_path.parent), gguf_path.name

    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights written here are plain tensors
    config.dtype = dtype
    with torch.device("meta"):  # names and shapes only, no memory
        skeleton = AutoModelForCausalLM.from_config(config)
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    tied = bool(getattr(config, "tie_word_embeddings", False))
    if tied:
        expected.pop("lm_head.weight", None)

    meta = load_gguf_checkpoint(str(gguf_path), return_tensors=False)
    architecture = meta["config"].get("model_type")
    reader = GGUFReader(str(gguf_path))
    arch_field = reader.fields["general.architecture"]
    gguf_arch = bytes(arch_field.parts[arch_field.data[0]]).decode()
    processor = TENSOR_PROCESSORS.get(gguf_arch, TensorProcessor)(config=meta["config"])
    name_map = get_gguf_hf_weights_map(skeleton, processor)

    index: dict[str, str] = {}
    shard: dict[str, torch.Tensor] = {}
    shard_size = total_bytes = 0
    shards: list[list[str]] = []

    def flush() -> None:
        nonlocal shard, shard_size
        if not shard:
            return
        file = f"model-{len(shards) + 1:05d}.safetensors"
        save_file(shard, str(tmp / file), metadata={"format": "pt"})
        shards.append(list(shard))
        for key in shard:
            index[key] = file
        shard, shard_size = {}, 0

    total = len(reader.tensors)
    for n, tensor in enumerate(reader.tensors, start=1):
        weights = dequantize(tensor.data, tensor.tensor_type)
        result = processor.process(weights=weights, name=tensor.name, tensor_key_mapping=name_map,
                                   parsed_parameters={"config": meta["config"]})
        hf_name = name_map.get(result.name)
        if hf_name is None or (tied and hf_name == "lm_head.weight"):
            continue
        with warnings.catch_warnings():  # a read-only view of the mapped file: .to() copies it anyway
            warnings.simplefilter("ignore", UserWarning)
            value = torch.from_numpy(np.ascontiguousarray(result.weights)).to(torch_dtype)
        del weights, result
        if tuple(value.shape) != expected.get(hf_name):
            raise ValueError(f"{gguf_path.name}: tensor {tensor.name} -> {hf_name} has shape {tuple(value.shape)}, "
                             f"the {architecture} config expects {expected.get(hf_name)}")
        nbytes = value.numel() * value.element_size()
        if shard and shard_size + nbytes > shard_bytes:
            flush()
        shard[hf_name] = value
        shard_size += nbytes
        total_bytes += nbytes
        if on_tensor:
            on_tensor(n, total)
    flush()
    missing = sorted(set(expected) - set(index))
    if missing:
        raise ValueError(f"{gguf_path.name}: no tensor for {missing[:5]}{' ...' if len(missing) > 5 else ''}")

    # Rename the shards to the -of-N names save_pretrained would use, and write the index.
    renamed = {}
    for i, _keys in enumerate(shards, start=1):
        old, new = f"model-{i:05d}.safetensors", f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        (tmp / old).rename(tmp / new)
        renamed[old] = new
    weight_map = {k: renamed[v] for k, v in sorted(index.items())}
    (tmp / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total_bytes}, "weight_map": weight_map}, indent=2))
    config.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(tmp)
    done = {"converter_version": CONVERTER_VERSION, "dtype": dtype, "tensors": len(weight_map),
            "shards": len(shards)} | (source or {})
    (tmp / DONE_MARKER).write_text(json.dumps(done, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return done
