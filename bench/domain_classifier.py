"""Domain classifier (pipeline/domains): held-out accuracy on the labelled texts (pools and domains_train), and timings.

    .venv/bin/python bench/domain_classifier.py [--fresh] [--cap 1000] [--k 15]

Embeds the labelled pools once (cached under $CURATE_HOME/domains; --fresh embeds again into a
temporary folder), holds out a seeded stratified share of every sub-domain, fits the kNN on
the rest and scores the held-out rows. The held-out rows come from the same pools as the
training rows, so the figures are optimistic for a new pool: the AIME check at the end
(a math pool with no labels, never trained on) is an out-of-pool sanity figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from pipeline.domain_classifier.embed import Embedder  # noqa: E402
from pipeline.domain_classifier.knn import KnnClassifier, load_or_fit, training_frame  # noqa: E402
from pipeline.domain_classifier.labelled import SEEDS, cap_per_subdomain, holdout_split  # noqa: E402
from pipeline.runtime_env import apply_defaults  # noqa: E402
from schemas.domains import DomainConfig  # noqa: E402


class Ticker:
    def start(self, label, total):
        self.label, self.total, self.n, self.t0, self.next = label, total, 0, time.perf_counter(), 0.1

    def advance(self, n=1):
        self.n += n
        if self.total and self.n / self.total >= self.next:
            rate = self.n / (time.perf_counter() - self.t0)
            print(f"  {self.label}: {self.n}/{self.total} ({rate:.0f}/s)", flush=True)
            self.next += 0.1

    def add_total(self, n):
        self.total += n

    def done(self):
        pass


def scores(truth: pl.DataFrame, pred: pl.DataFrame) -> None:
    both = pl.DataFrame({"true": truth["domain"], "pred": pred["domain"],
                         "true_sub": truth["subdomain"], "pred_sub": pred["subdomain"], "conf": pred["confidence"]})
    top = (both["true"] == both["pred"]).mean()
    sub = ((both["true"] == both["pred"]) & (both["true_sub"] == both["pred_sub"])).mean()
    print(f"held-out rows: {both.height}; accuracy top-level {top:.4f}, sub-domain {sub:.4f}")
    print("\nper domain: precision / recall / support")
    for d in sorted(set(both["true"])):
        tp = both.filter((pl.col("true") == d) & (pl.col("pred") == d)).height
        npred, ntrue = (both["pred"] == d).sum(), (both["true"] == d).sum()
        print(f"  {d:8s} {tp / max(npred, 1):.3f} / {tp / ntrue:.3f} / {ntrue}")
    print("\nconfusion (rows true, columns predicted)")
    print(both.pivot(on="pred", index="true", values="conf", aggregate_function="len", sort_columns=True)
          .fill_null(0).sort("true"))
    hit = pl.col("pred_sub") == pl.col("true_sub")
    per_sub = both.group_by("true", "true_sub").agg(n=pl.len(), recall=hit.mean()).sort("recall")
    print("\nweakest sub-domains (recall of the exact sub-domain)")
    print(per_sub.head(8))
    for t in (0.5, 0.6, 0.8):
        kept = both.filter(pl.col("conf") >= t)
        print(f"confidence >= {t}: {kept.height / both.height:.3f} of rows, top-level accuracy "
              f"{(kept['true'] == kept['pred']).mean():.4f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fresh", action="store_true", help="embed the labelled pools again (temporary cache)")
    ap.add_argument("--cap", type=int, default=DomainConfig().max_per_subdomain)
    ap.add_argument("--k", type=int, default=DomainConfig().k)
    args = ap.parse_args()
    home = apply_defaults()
    cfg = DomainConfig(max_per_subdomain=args.cap, k=args.k)
    with tempfile.TemporaryDirectory() as tmp:
        run(cfg, Path(tmp) if args.fresh else home / "domains")


def run(cfg: DomainConfig, cache: Path) -> None:
    t0 = time.perf_counter()
    embedder = Embedder()
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = load_or_fit(cfg, cache, embedder, progress=Ticker())
    fit_s = time.perf_counter() - t0
    n = len(full.domains)
    print(f"model load {load_s:.1f} s; labelled rows {n} (cap {cfg.max_per_subdomain} per sub-domain); "
          f"classifier {full.fingerprint}")
    print(f"fit: {fit_s:.1f} s, of which embedding {full.embed_seconds:.1f} s"
          + (" (all embeddings cached; --fresh measures a cold fit)" if not full.embed_seconds else ""))

    pairs = [f"{d}/{s}" for d, s in zip(full.domains, full.subdomains)]
    train, test = holdout_split(pairs, cfg.holdout_fraction, cfg.seed)
    t0 = time.perf_counter()
    clf = KnnClassifier(cfg.k, balanced=cfg.knn_balanced).fit(full.embeddings[train], full.domains[train].tolist(),
                                                              [s or None for s in full.subdomains[train].tolist()])
    pred = clf.predict(full.embeddings[test])
    knn_s = time.perf_counter() - t0
    frame = training_frame(cfg)  # the rows load_or_fit fitted on, in the same order
    print(f"train {len(train)}, held out {len(test)} ({cfg.holdout_fraction:.0%} of each sub-domain, seed {cfg.seed}); "
          f"kNN fit+predict {knn_s:.2f} s ({len(test) / knn_s:.0f} rows/s, embeddings given)\n")
    scores(frame[test.tolist()], pred)

    print("\ntop-level / sub-domain accuracy by k and by training cap per sub-domain")
    truth = frame[test.tolist()]
    train_frame = frame[train.tolist()].with_row_index("_pos")
    for cap in sorted({100, 250, 500, cfg.max_per_subdomain}):
        keep = cap_per_subdomain(train_frame, cap, cfg.seed)["_pos"].to_numpy()
        idx = train[keep]
        for k in (3, 5, 10, 15, 30):
            p = KnnClassifier(k, balanced=cfg.knn_balanced).fit(full.embeddings[idx], full.domains[idx].tolist(),
                                     [s or None for s in full.subdomains[idx].tolist()]).predict(full.embeddings[test])
            top = (p["domain"] == truth["domain"]).mean()
            sub = ((p["domain"] == truth["domain"]) & (p["subdomain"] == truth["subdomain"])).mean()
            print(f"  cap {cap:5d} (train {len(idx):5d}) k {k:2d}: {top:.4f} / {sub:.4f}")

    texts = frame[test.tolist()]["text"].to_list()[:512]
    t0 = time.perf_counter()
    embedder.embed(texts)
    emb_s = time.perf_counter() - t0
    print(f"\nembedding throughput: {len(texts)} held-out texts in {emb_s:.1f} s = {len(texts) / emb_s:.0f} texts/s")

    aime = [r["problem"] for r in json.loads((SEEDS / "aime_1983_2023.json").read_text())][:200]
    t0 = time.perf_counter()
    out = full.classify(aime)
    print(f"out of pool: {len(aime)} AIME problems (math, never trained on) classified in "
          f"{time.perf_counter() - t0:.1f} s: {(out['domain'] == 'math').mean():.3f} math; "
          f"{dict(out['domain'].value_counts().iter_rows())}")
    print(f"  sub-domains: {dict(out['subdomain'].value_counts(sort=True).head(6).iter_rows())}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    pl.Config.set_tbl_rows(30)
    main()
