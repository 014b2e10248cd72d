"""Leave-one-source-out accuracy of the kNN domain classifier on its own labelled texts: for each
source S (a pool, or a source of data/labels/domains_train.jsonl), fit on every other source and
classify S's rows. A source the classifier never saw is what the unseen set asks about, so this is
the honest figure to tune k, the cap and the cuts on (never the unseen set).

    .venv/bin/python bench/domains_loso.py [--k 5,20] [--cap 500,250] [--min-similarity 0,0.25] [--balanced 0,1]
                                           [--varied-only | --pools-only] [--quiet]

Prints, per setting (defaults: the config's), accuracy per held-out source and the mean over sources
(each source counts once, whatever its size), then per domain, and how often kNN is right where the
combined classifier would trust it (top similarity >= knn_trust_similarity and a confident vote).
Embeddings come from the kNN cache ($CURATE_HOME/domains); texts not yet there are embedded.
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


def loso(frame: pl.DataFrame, emb: np.ndarray, k: int, min_similarity: float, balanced: bool,
         sources: list[str]) -> pl.DataFrame:
    """Predicted domain (and top similarity, confidence) of each row of the held-out sources, fitted
    without that source."""
    from pipeline.domain_classifier.knn import KnnClassifier

    parts = []
    for source in sources:
        held = (frame["source"] == source).to_numpy()
        rest = frame.filter(~pl.Series(held))
        clf = KnnClassifier(k, balanced=balanced).fit(emb[~held], rest["domain"].to_list(), rest["subdomain"].to_list())
        pred = clf.predict(emb[held])
        far = pred["top_similarity"] < min_similarity
        parts.append(frame.filter(pl.Series(held)).select("source", "domain").with_columns(
            pred=pl.when(far).then(pl.lit("other")).otherwise(pred["domain"]), sim=pred["top_similarity"],
            conf=pred["confidence"]))
    return pl.concat(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", default=None, help="k values (default: the config's)")
    ap.add_argument("--cap", default=None, help="max_per_subdomain values (default: the config's)")
    ap.add_argument("--min-similarity", default=None, help="knn_min_similarity values (default: the config's)")
    ap.add_argument("--balanced", default=None, help="0 and/or 1 (default: the config's knn_balanced)")
    ap.add_argument("--varied-only", action="store_true", help="hold out only the sources of domains_train.jsonl")
    ap.add_argument("--pools-only", action="store_true", help="fit on the pools alone (no domains_train.jsonl)")
    ap.add_argument("--quiet", action="store_true", help="one line per setting")
    args = ap.parse_args()

    from pipeline.domain_classifier.embed import Embedder, model_id
    from pipeline.domain_classifier.knn import cached_embeddings, training_frame
    from pipeline.domain_classifier.labelled import load_varied
    from pipeline.runtime_env import curate_home
    from schemas.domains import DomainConfig

    base = DomainConfig()

    def values(arg, default, kind):
        return [kind(v) for v in arg.split(",")] if arg else [default]

    sims = values(args.min_similarity, base.knn_min_similarity, float)
    balance = [bool(int(b)) for b in args.balanced.split(",")] if args.balanced else [base.knn_balanced]
    varied_sources = sorted({r["source"] for r in load_varied()})
    for cap in values(args.cap, base.max_per_subdomain, int):
        cfg = base.model_copy(update={"max_per_subdomain": cap})
        frame = training_frame(cfg, varied=None) if args.pools_only else training_frame(cfg)
        emb, _ = cached_embeddings(frame["text"].to_list(), Embedder, curate_home() / "domains", model_id())
        sources = varied_sources if args.varied_only else sorted(frame["source"].unique())
        for k, sim, balanced in [(k, s, b) for k in values(args.k, base.k, int) for s in sims for b in balance]:
            started = time.perf_counter()
            out = loso(frame, emb, k, sim, balanced, sources)
            hit = pl.col("pred") == pl.col("domain")
            per_source = out.group_by("source").agg(domain=pl.col("domain").first(), n=pl.len(), acc=hit.mean(),
                                                    wrong=pl.col("pred").filter(~hit).mode().first())
            per_domain = per_source.group_by("domain").agg(sources=pl.len(), mean_acc=pl.col("acc").mean())
            trusted = out.filter((pl.col("sim") >= base.knn_trust_similarity) & (pl.col("conf") >= base.min_confidence))
            print(f"\ncap {cap}, k {k}, knn_min_similarity {sim}, balanced {balanced}: {frame.height} rows, "
                  f"{len(sources)} sources held out in turn; mean over sources {per_source['acc'].mean():.3f}, over "
                  f"rows {out.select(hit.mean()).item():.3f}; where combined trusts kNN (top similarity >= "
                  f"{base.knn_trust_similarity}, vote >= {base.min_confidence}): {trusted.height / out.height:.3f} of "
                  f"rows, right {trusted.select(hit.mean()).item() or 0:.3f} ({time.perf_counter() - started:.0f} s)")
            if args.quiet:
                continue
            with pl.Config(tbl_rows=60, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
                print(per_source.sort("domain", "source"))
                print(per_domain.sort("domain"))


if __name__ == "__main__":
    main()
