"""Lexical candidates: BM25 (the `bm25s` library) over every stored sample's question, reasoning
and answer; the query is the case's prompt and bad output (each distinct term once, so a looping
output does not outweigh the rest).

DuckDB 2.0 has no full-text extension offline, hence bm25s. The index is saved beside the
database (`<db>.trace/bm25/`) with the sample ids it covers and a fingerprint of them (count and
an XOR of id hashes: samples are immutable by id, so the set of ids is what can change); a
stale index is rebuilt whole, a fresh one is memory-mapped and kept for the process.
"""

from __future__ import annotations

import json
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.progress import NoProgress, Progress
from pipeline.store import Store

INDEX_VERSION = 2  # bump when the text, the tokenizer or the BM25 parameters change
TEXT_SQL = """SELECT s.sample_id, concat_ws(chr(10), q.text, s.reasoning, s.answer) AS text
              FROM samples s JOIN questions q USING (question_id) ORDER BY s.sample_id"""
CHUNK = 50_000
_loaded: dict[str, tuple[str, object, np.ndarray, list[str]]] = {}  # dir -> (fingerprint, bm25, ids, terms)


def index_dir(store: Store) -> Path:
    return Path(f"{store.path}.trace") / "bm25"


def fingerprint(store: Store) -> str:
    n, xor = store.con.sql("SELECT count(*), coalesce(bit_xor(hash(sample_id)), 0) FROM samples").fetchall()[0]
    return f"v{INDEX_VERSION}:{n}:{xor:x}"


TOKEN = r"\b\w\w+\b"  # bm25s's default token pattern: words of two characters or more, lowercased


@lru_cache(maxsize=1)
def stopwords() -> list[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return list(STOPWORDS_EN)


def tokens(texts: pl.Series) -> pl.DataFrame:
    """doc (position in texts), tok: the BM25 terms of each text, in order. Polars (Rust regex,
    every core): bm25s's own Python tokenizer was about 5,000 texts/s here."""
    return (pl.DataFrame({"text": texts.fill_null("")}).with_row_index("doc")
            .select("doc", tok=pl.col("text").str.to_lowercase().str.extract_all(TOKEN))
            .explode("tok").drop_nulls("tok").filter(~pl.col("tok").is_in(stopwords())))


class _Docs:
    """Documents as token-id lists for bm25s, read from one flat array (no list of lists held)."""

    def __init__(self, flat: np.ndarray, offsets: np.ndarray):
        self.flat, self.offsets = flat, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __iter__(self):
        for i in range(len(self)):
            yield self.flat[self.offsets[i]:self.offsets[i + 1]].tolist()


def build_index(store: Store, directory: Path, fp: str, progress: Progress | None = None) -> None:
    """Tokenize every sample (chunks read from DuckDB), index with bm25s, save to a temporary
    folder and swap it in (a killed build leaves the old index or none, never half of one)."""
    import bm25s

    progress = progress or NoProgress()
    progress.start("trace: BM25 index", store.count("samples"))
    ids, flats, lengths = [], [], []
    vocab = pl.DataFrame(schema={"tok": pl.String, "id": pl.Int32})
    for batch in store.con.sql(TEXT_SQL).fetch_record_batch(CHUNK):
        frame = pl.from_arrow(batch)
        ids.extend(frame["sample_id"].to_list())
        toks = tokens(frame["text"])
        new = toks.select(pl.col("tok").unique(maintain_order=True)).join(vocab, on="tok", how="anti")
        vocab = pl.concat([vocab, new.with_columns(id=pl.int_range(vocab.height, vocab.height + new.height,
                                                                    dtype=pl.Int32))])
        flats.append(toks.join(vocab, on="tok", how="left", maintain_order="left")["id"].to_numpy())
        lengths.append(np.bincount(toks["doc"].to_numpy(), minlength=frame.height))
        progress.advance(frame.height)
    flat = np.concatenate(flats) if flats else np.zeros(0, np.int32)
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths) if lengths else [])]).astype(np.int64)
    del flats
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenization.Tokenized(ids=_Docs(flat, offsets), vocab=dict(vocab.iter_rows())),
                    show_progress=False)
    del flat
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    retriever.save(str(tmp), show_progress=False)
    np.save(tmp / "sample_ids.npy", np.array(ids, dtype=str))
    (tmp / "fingerprint.json").write_text(json.dumps({"fingerprint": fp, "samples": len(ids)}))
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    progress.done()


def load_index(store: Store, progress: Progress | None = None, rebuild: bool = False):
    """(bm25, sample ids, terms by id), building or rebuilding the saved index when stale."""
    import bm25s

    directory, fp = index_dir(store), fingerprint(store)
    cached = _loaded.get(str(directory))
    if cached and cached[0] == fp and not rebuild:
        return cached[1:]
    meta = directory / "fingerprint.json"
    if rebuild or not meta.exists() or json.loads(meta.read_text())["fingerprint"] != fp:
        build_index(store, directory, fp, progress)
    retriever = bm25s.BM25.load(str(directory), mmap=True, show_progress=False)
    ids = np.load(directory / "sample_ids.npy")
    terms = [t for t, _ in sorted(retriever.vocab_dict.items(), key=lambda kv: kv[1])]
    _loaded[str(directory)] = (fp, retriever, ids, terms)
    return retriever, ids, terms


def lexical_candidates(store: Store, query: str, top: int = 50, progress: Progress | None = None,
                       n_terms: int = 5) -> pl.DataFrame:
    """sample_id, score (BM25), rank, detail (the query terms that weigh most in the sample)."""
    retriever, ids, terms = load_index(store, progress)
    vocab = retriever.vocab_dict
    query_ids = sorted({vocab[t] for t in tokens(pl.Series([query]))["tok"].to_list() if t in vocab})
    empty = pl.DataFrame(schema={"sample_id": pl.String, "score": pl.Float64, "rank": pl.Int32, "detail": pl.String})
    if not query_ids or len(ids) == 0:
        return empty
    scores = retriever.get_scores_from_ids(query_ids)
    k = min(top, int((scores > 0).sum()))
    if k == 0:
        return empty
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.lexsort((ids[best], -scores[best]))]
    detail = _top_terms(retriever.scores, query_ids, best, terms, n_terms)
    return pl.DataFrame({"sample_id": ids[best].tolist(), "score": scores[best].astype(np.float64),
                         "rank": np.arange(1, k + 1, dtype=np.int32), "detail": detail})


def _top_terms(matrix: dict, query_ids: list[int], docs: np.ndarray, terms: list[str], n: int) -> list[str]:
    """Per doc, the n query terms with the highest BM25 weight in it."""
    weights = np.zeros((len(docs), len(query_ids)), dtype=np.float32)
    indptr, indices, data = matrix["indptr"], matrix["indices"], matrix["data"]
    position = {d: i for i, d in enumerate(docs.tolist())}
    for j, t in enumerate(query_ids):
        rows = np.asarray(indices[indptr[t]:indptr[t + 1]])
        hit = np.isin(rows, docs)
        if hit.any():
            for r, w in zip(rows[hit].tolist(), np.asarray(data[indptr[t]:indptr[t + 1]])[hit].tolist()):
                weights[position[r], j] = w
    out = []
    for row in weights:
        order = np.argsort(-row)[:n]
        out.append("terms: " + ", ".join(f"{terms[query_ids[j]]} {row[j]:.1f}" for j in order if row[j] > 0))
    return out
