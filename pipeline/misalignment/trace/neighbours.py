"""Embedding candidates: the stored samples nearest to the case's prompt + bad output by cosine
of MiniLM sentence embeddings (pipeline/domain_classifier/embed.py).

A sample's embedding (its question, answer and the start of its reasoning: the first 600
characters, about 150 tokens; MiniLM costs grow with length and it reads at most 256 tokens) is
computed once and stored in `sample_embeddings` under the model's id: a trace embeds only
the samples that lack one, in batches written as they finish (a killed trace keeps them). The
search is a matrix product in numpy over every stored vector, kept in memory for the process
while no sample is added.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl

from pipeline.progress import NoProgress, Progress
from pipeline.store import Store

TEXT_CHARS = 600  # about 150 tokens: 1.6x the speed of 2,000 characters (bench/trace_speed.py)
BATCH = 1024  # samples embedded per stored batch
_matrices: dict[tuple[str, str], tuple[int, np.ndarray, np.ndarray]] = {}  # (db, model) -> (n, ids, vectors)


@lru_cache(maxsize=1)
def embedder():
    from pipeline.domain_classifier.embed import Embedder

    return Embedder()


def sample_text(question: str | None, reasoning: str | None, answer: str | None) -> str:
    """What is embedded, for a sample and for a case alike (prompt, and the bad output split)."""
    text = "\n".join(t for t in (question, answer, reasoning) if t)[:TEXT_CHARS]
    return text if text.strip() else "(empty)"


def embed_missing(store: Store, model=None, progress: Progress | None = None) -> int:
    """Embed and store every sample without a vector from this model; returns how many."""
    model = model or embedder()
    model_id = model.model_id
    if store.count("samples") == store.scalar("SELECT count(*) FROM sample_embeddings WHERE model_id = ?", [model_id]):
        return 0  # samples are never deleted: as many vectors as samples means every sample has one
    missing = store.frame("""
        SELECT s.sample_id, q.text AS question, s.reasoning, s.answer
        FROM samples s JOIN questions q USING (question_id)
        WHERE s.sample_id NOT IN (SELECT sample_id FROM sample_embeddings WHERE model_id = ?)
        ORDER BY s.sample_id""", [model_id])
    if missing.is_empty():
        return 0
    progress = progress or NoProgress()
    progress.start("trace: embed samples", missing.height)
    for start in range(0, missing.height, BATCH):
        part = missing.slice(start, BATCH)
        texts = [sample_text(*row) for row in part.select("question", "reasoning", "answer").iter_rows()]
        vectors = model.embed(texts)
        store.insert("sample_embeddings", pl.DataFrame(
            {"sample_id": part["sample_id"], "model_id": model_id,
             "vector": pl.Series(vectors, dtype=pl.Array(pl.Float32, vectors.shape[1]))}))
        progress.advance(part.height)
    progress.done()
    return missing.height


def stored_vectors(store: Store, model_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(sample ids, unit vectors) of every stored embedding of this model, cached while unchanged."""
    key = (str(store.path), model_id)
    n = store.scalar("SELECT count(*) FROM sample_embeddings WHERE model_id = ?", [model_id])
    cached = _matrices.get(key)
    if cached and cached[0] == n:
        return cached[1], cached[2]
    table = store.con.sql("SELECT sample_id, vector FROM sample_embeddings WHERE model_id = ? ORDER BY sample_id",
                          params=[model_id]).arrow()
    table = table.read_all() if hasattr(table, "read_all") else table
    ids = np.array(table.column("sample_id").to_pylist(), dtype=str)
    flat = table.column("vector").combine_chunks().flatten().to_numpy()
    vectors = np.ascontiguousarray(flat, dtype=np.float32).reshape(len(ids), -1)
    _matrices[key] = (n, ids, vectors)
    return ids, vectors


def embedding_candidates(store: Store, query: str, top: int = 50, model=None,
                         progress: Progress | None = None) -> pl.DataFrame:
    """sample_id, score (cosine), rank, detail, over every sample (missing embeddings made first).
    query: the text to embed (sample_text of the case's prompt and output)."""
    model = model or embedder()
    embed_missing(store, model, progress)
    ids, vectors = stored_vectors(store, model.model_id)
    empty = pl.DataFrame(schema={"sample_id": pl.String, "score": pl.Float64, "rank": pl.Int32, "detail": pl.String})
    if len(ids) == 0:
        return empty
    q = model.embed([query[:TEXT_CHARS] if query.strip() else "(empty)"])[0]
    scores = vectors @ q
    k = min(top, len(ids))
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.lexsort((ids[best], -scores[best]))]
    return pl.DataFrame({"sample_id": ids[best].tolist(), "score": scores[best].astype(np.float64),
                         "rank": np.arange(1, k + 1, dtype=np.int32),
                         "detail": [f"cosine {s:.3f}" for s in scores[best]]})
