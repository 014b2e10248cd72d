"""The default model's tokenizer and chat template (Qwen2.5-Coder-1.5B-Instruct: renders `tools`,
Hermes <tool_call>) read from the header of its shipped GGUF, without the 1.1 GB of weights: the
header and vocabulary sit in the first of its 22 part packages. About 30 s the first time, then
read from $CURATE_HOME; no model is loaded."""

from __future__ import annotations

from pathlib import Path
from unittest import mock


def qwen_tokenizer_folder() -> Path:
    """The tokenizer (with its chat template) as an HF folder that `export.tokenizer` can name,
    saved once under $CURATE_HOME/tokenizers."""
    import gguf
    from transformers import AutoTokenizer

    from pipeline.models.assemble import locate_part
    from pipeline.models.shipped import QWEN25_CODER_15B
    from pipeline.runtime_env import curate_home

    folder = curate_home() / "tokenizers" / QWEN25_CODER_15B.name
    if (folder / "tokenizer_config.json").exists():
        return folder
    part = locate_part(QWEN25_CODER_15B.parts[0])

    class HeaderOnly(gguf.GGUFReader):
        def _build_tensors(self, start_offs, fields):  # the tensors lie in the other parts
            self.tensors = []

    with mock.patch.object(gguf, "GGUFReader", HeaderOnly):
        tokenizer = AutoTokenizer.from_pretrained(str(part.parent), gguf_file=part.name)
    tmp = folder.with_name(folder.name + ".partial")
    tokenizer.save_pretrained(tmp)
    tmp.rename(folder)  # whole or not at all
    return folder
