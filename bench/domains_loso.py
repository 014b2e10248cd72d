"""Leave-one-source-out accuracy of the kNN domain classifier on its own labelled texts: for each
source S (a pool, or a source of data/labels/domains_train.jsonl), fit on every other source and
classify S's rows. A source the classifier never saw is what the unseen set asks about, so this is
the honest figure to tune k, the cap and the cuts on (never the unseen set).

    .venv/bin/python bench/domains_loso.py [--k 5,10] [--cap 500,200] [--min-similarity 0.35] [--varied-only]

Prints, per setting, accuracy per held-out source and the mean over sources (each source counts
once, whatever its size), then per domain. Embeddings come from the kNN cache ($CURATE_HOME/domains).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CURATE_HOME", str(ROOT / ".curate"))

from pipeline.runtime_env import apply_defaults  # noqa: E402

apply_defaults()

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402


def loso(frame: pl.DataFrame, emb: np.ndarray, k: int, min_similarity: float, sources: list[str]) -> pl.DataFrame:
    """Predicted domain of each row of the held-out sources, fitted without that source."""
    from pipeline.domain_classifier.knn import KnnClassifier

    parts = []
    for source in sources:
        held = (frame["source"] == source).to_numpy()
        clf = KnnClassifier(k).fit(emb[~held], frame.filter(~pl.Series(held))["domain"].to_list(),
                                   frame.filter(~pl.Series(held))["subdomain"].to_list())
        pred = clf.predict(emb[held])
        far = pred["top_similarity"] < min_similarity
        parts.append(frame.filter(pl.Series(held)).select("source", "domain").with_columns(
            pred=pl.when(far).then(pl.lit("other")).otherwise(pred["domain"])))
    return pl.concat(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", default="5")
    ap.add_argument("--cap", default="500", help="max_per_subdomain values")
    ap.add_argument("--min-similarity", default=None, help="knn_min_similarity values (default: the config's)")
    ap.add_argument("--varied-only", action="store_true", help="hold out only the sources of domains_train.jsonl")
    args = ap.parse_args()

    from pipeline.domain_classifier.embed import model_id
    from pipeline.domain_classifier.knn import cached_embeddings, training_frame
    from pipeline.domain_classifier.labelled import load_varied
    from pipeline.runtime_env import curate_home
    from schemas.domains import DomainConfig

    base = DomainConfig()
    sims = [float(s) for s in args.min_similarity.split(",")] if args.min_similarity else [base.knn_min_similarity]
    varied_sources = sorted({r["source"] for r in load_varied()})
    for cap in [int(c) for c in args.cap.split(",")]:
        cfg = base.model_copy(update={"max_per_subdomain": cap})
        frame = training_frame(cfg)
        emb, _ = cached_embeddings(frame["text"].to_list(), lambda: __import__(
            "pipeline.domain_classifier.embed", fromlist=["Embedder"]).Embedder(), curate_home() / "domains", model_id())
        sources = varied_sources if args.varied_only else sorted(frame["source"].unique())
        for k in [int(x) for x in args.k.split(",")]:
            for sim in sims:
                started = time.perf_counter()
                out = loso(frame, emb, k, sim, sources)
                hit = pl.col("pred") == pl.col("domain")
                per_source = out.group_by("source").agg(domain=pl.col("domain").first(), n=pl.len(), acc=hit.mean(),
                                                        wrong=pl.col("pred").filter(~hit).mode().first())
                per_domain = per_source.group_by("domain").agg(sources=pl.len(), mean_acc=pl.col("acc").mean())
                print(f"\ncap {cap}, k {k}, knn_min_similarity {sim}: {frame.height} rows, {len(sources)} sources held "
                      f"out in turn; mean over sources {per_source['acc'].mean():.3f}, over rows {out.select(hit.mean()).item():.3f} "
                      f"({time.perf_counter() - started:.0f} s)")
                with pl.Config(tbl_rows=60, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
                    print(per_source.sort("domain", "source"))
                    print(per_domain.sort("domain"))


if __name__ == "__main__":
    main()
