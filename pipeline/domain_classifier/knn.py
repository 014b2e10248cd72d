"""Cosine kNN over sentence embeddings, and the cache of the labelled texts' embeddings.

Votes are the neighbours' similarities (clipped at 0); with `balanced`, each domain's votes are
divided by its share of the labelled rows, so a domain with many labelled texts (math: 12 sub-domains)
does not win by numbers alone. Confidence is the winning domain's share of the vote. The sub-domain
is the best-voted one among neighbours of the winning domain, so the pair is always consistent.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.domain_classifier.embed import DIM, Embedder, model_id
from pipeline.domain_classifier.labelled import SEEDS, VARIED, cap_per_subdomain, load_labelled, on_taxonomy
from pipeline.hashing import stable_hash
from pipeline.progress import Progress
from pipeline.runtime_env import curate_home
from schemas.domains import DomainConfig

_CHUNK = 1024  # query rows per similarity block: bounds memory at 1024 x n_train floats


class KnnClassifier:
    def __init__(self, k: int = 5, embedder: Embedder | None = None, balanced: bool = False):
        self.k = k
        self.balanced = balanced
        self._embedder = embedder
        self.fingerprint: str | None = None  # set by load_or_fit
        self.embed_seconds: float | None = None  # spent embedding labelled texts (0: all cached)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:  # a cache hit needs the model only when questions need kNN
            self._embedder = Embedder()
        return self._embedder

    def fit(self, embeddings: np.ndarray, domains: list[str], subdomains: list[str | None]) -> "KnnClassifier":
        if not (len(embeddings) == len(domains) == len(subdomains)) or len(domains) == 0:
            raise ValueError(f"fit needs as many labels as embeddings, and some: {len(embeddings)} embeddings, "
                             f"{len(domains)} domains, {len(subdomains)} subdomains")
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.domains = np.asarray(domains, dtype=str)
        self.subdomains = np.asarray(["" if s is None else s for s in subdomains], dtype=str)
        self._domain_names, self._domain_codes = np.unique(self.domains, return_inverse=True)
        counts = np.bincount(self._domain_codes, minlength=len(self._domain_names))
        # Vote weight per domain: 1 / its share of the labelled rows (balanced), else 1.
        self._domain_weight = len(self.domains) / counts if self.balanced else np.ones(len(counts))
        pairs = np.char.add(np.char.add(self.domains, "/"), self.subdomains)
        pair_names, self._pair_codes = np.unique(pairs, return_inverse=True)
        # Which domain each (domain, subdomain) code belongs to, and its sub-domain name.
        self._pair_domain = np.searchsorted(self._domain_names, [p.split("/", 1)[0] for p in pair_names])
        self._pair_sub = [p.split("/", 1)[1] or None for p in pair_names]
        return self

    def predict(self, embeddings: np.ndarray) -> pl.DataFrame:
        """domain, subdomain, confidence (winning vote share), top_similarity per row."""
        k = min(self.k, len(self.embeddings))
        out = {"domain": [], "subdomain": [], "confidence": [], "top_similarity": []}
        for start in range(0, len(embeddings), _CHUNK):
            sims = embeddings[start:start + _CHUNK] @ self.embeddings.T
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            w = np.clip(np.take_along_axis(sims, top, axis=1), 0, None) + 1e-6  # no all-zero vote
            rows = np.repeat(np.arange(len(top)), k)
            votes = np.zeros((len(top), len(self._domain_names)))
            np.add.at(votes, (rows, self._domain_codes[top].ravel()), w.ravel())
            votes *= self._domain_weight[None, :]
            winner = votes.argmax(1)
            pair_votes = np.zeros((len(top), len(self._pair_sub)))
            np.add.at(pair_votes, (rows, self._pair_codes[top].ravel()), w.ravel())
            pair_votes[self._pair_domain[None, :] != winner[:, None]] = -1.0
            out["domain"] += self._domain_names[winner].tolist()
            out["subdomain"] += [self._pair_sub[p] for p in pair_votes.argmax(1)]
            out["confidence"] += (votes.max(1) / votes.sum(1)).tolist()
            out["top_similarity"] += sims.max(1).tolist()
        return pl.DataFrame(out, schema={"domain": pl.String, "subdomain": pl.String,
                                         "confidence": pl.Float64, "top_similarity": pl.Float64})

    def classify(self, texts: list[str], progress: Progress | None = None) -> pl.DataFrame:
        return self.predict(self.embedder.embed(texts, progress=progress))


def training_frame(cfg: DomainConfig, seeds: Path = SEEDS, varied: Path | None = VARIED) -> pl.DataFrame:
    """The labelled rows the classifier is fitted on (the pools and the varied labelled file, see
    labelled.py): on the taxonomy, capped per sub-domain."""
    return cap_per_subdomain(on_taxonomy(load_labelled(seeds, varied), cfg.taxonomy), cfg.max_per_subdomain,
                             cfg.seed)


def fingerprint(frame: pl.DataFrame, model: str, k: int, balanced: bool = False) -> str:
    """Identifies a fitted classifier (labelled rows, model, k, vote balancing): provenance for reports."""
    digest = hashlib.sha256()
    for text, domain, sub in frame.select("text", "domain", "subdomain").iter_rows():
        digest.update(f"{domain}\x1f{sub}\x1f{text}\x1e".encode())
    return stable_hash(model, digest.hexdigest(), k, *(["balanced"] if balanced else []))


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_embeddings(texts: list[str], embedder: Callable[[], Embedder], cache: Path, model: str,
                      progress: Progress | None = None) -> tuple[np.ndarray, float]:
    """Embeddings of texts, embedding only those not yet in the model's cache file (keyed per
    text, so a new cap, seed, taxonomy or k re-embeds nothing already done). Returns the
    embeddings and the seconds spent embedding in this call."""
    path = cache / f"embeddings-{model}.npz"
    keys, vectors = np.array([], dtype="<U24"), np.zeros((0, DIM), np.float32)
    if path.exists():
        with np.load(path, allow_pickle=False) as data:
            keys, vectors = data["keys"], data["embeddings"]
    index = {k: i for i, k in enumerate(keys.tolist())}
    wanted = [_text_key(t) for t in texts]
    missing = {k: t for k, t in zip(wanted, texts) if k not in index}
    seconds = 0.0
    if missing:
        started = time.perf_counter()
        new = embedder().embed(list(missing.values()), progress=progress)
        seconds = time.perf_counter() - started
        for key in missing:
            index[key] = len(index)
        keys, vectors = np.concatenate([keys, np.asarray(list(missing), dtype="<U24")]), np.vstack([vectors, new])
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")  # a killed run never leaves half a cache file
        np.savez(tmp, keys=keys, embeddings=vectors)
        tmp.replace(path)
    return vectors[[index[k] for k in wanted]], seconds


def load_or_fit(cfg: DomainConfig, cache_dir: Path | None = None, embedder: Embedder | None = None,
                seeds: Path = SEEDS, progress: Progress | None = None, varied: Path | None = VARIED) -> KnnClassifier:
    """The classifier for cfg, fitted on the labelled texts (training_frame). The first call embeds
    them (a few minutes on 2 idle cores) into $CURATE_HOME/domains; later calls read the cache and
    do not load the model until a question needs kNN."""
    frame = training_frame(cfg, seeds, varied)
    model = embedder.model_id if embedder else model_id()
    clf = KnnClassifier(cfg.k, embedder, balanced=cfg.knn_balanced)
    embeddings, clf.embed_seconds = cached_embeddings(frame["text"].to_list(), lambda: clf.embedder,
                                                      cache_dir or curate_home() / "domains", model, progress)
    clf.fit(embeddings, frame["domain"].to_list(), frame["subdomain"].to_list())
    clf.fingerprint = fingerprint(frame, model, cfg.k, cfg.knn_balanced)
    return clf
