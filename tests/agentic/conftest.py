"""Fixtures of the agentic tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def qwen_target():
    """(HF folder, tokenizer) of the default model's chat template, from its GGUF header."""
    from transformers import AutoTokenizer

    from tests.agentic.target_tokenizer import qwen_tokenizer_folder

    folder = qwen_tokenizer_folder()
    return folder, AutoTokenizer.from_pretrained(folder)
