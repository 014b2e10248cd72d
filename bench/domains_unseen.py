"""Domain classifiers on questions from sources they never saw (data/labels/domains_unseen.jsonl),
and on a held-out sample of the labelled pools they were fitted on.

    .venv/bin/python bench/domains_unseen.py [--methods knn,zero_shot] [--pool-sample 40] [--unseen-per-domain N]
                                             [--model qwen2.5-coder-1.5b-instruct] [--out preds.parquet]

Prints top-level accuracy per domain for kNN, the zero-shot LLM rule (as answered;
calibrated by its prior over the domains, `zero_shot_cal`; and by the mean distribution over
the questions, `zero_shot_bcal`) and the combined
classifier (pipeline/domain_classifier/combined.py), seconds per 1,000 questions, and how often a
question fit for no domain (`other`) got one. Predictions go to --out for further looks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CURATE_HOME", str(ROOT / ".curate"))

from pipeline.runtime_env import apply_defaults  # noqa: E402

apply_defaults()

import polars as pl  # noqa: E402


def accuracy_table(frame: pl.DataFrame, methods: list[str]) -> None:
    print(f"{'set':<8}{'domain':<9}{'n':>5}" + "".join(f"{m:>12}" for m in methods))
    for (subset,), part in sorted(frame.group_by("set"), key=lambda g: g[0]):
        for domain in sorted(part["domain"].unique()) + ["all"]:
            rows = part if domain == "all" else part.filter(pl.col("domain") == domain)
            cells = "".join(f"{(rows[m] == rows['domain']).mean():>12.3f}" for m in methods)
            print(f"{subset:<8}{domain:<9}{rows.height:>5}{cells}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="knn,zero_shot")
    ap.add_argument("--pool-sample", type=int, default=40, help="held-out labelled rows per domain")
    ap.add_argument("--unseen-per-domain", type=int, default=None, help="a seeded sample of the unseen set per domain")
    ap.add_argument("--model", default=None, help="engine model (default: the config default)")
    ap.add_argument("--out", default=str(ROOT / ".curate" / "bench" / "domains_unseen.parquet"))
    args = ap.parse_args()

    from pipeline.domain_classifier.knn import KnnClassifier, load_or_fit, training_frame
    from pipeline.domain_classifier.labelled import holdout_split
    from schemas.domains import DomainConfig

    cfg = DomainConfig()
    unseen = pl.DataFrame([json.loads(line) for line in (ROOT / "data/labels/domains_unseen.jsonl").open()])
    unseen = unseen.select(text="question", domain="domain", source="source").with_columns(set=pl.lit("unseen"))
    if args.unseen_per_domain:
        unseen = pl.concat([g.sample(min(args.unseen_per_domain, g.height), seed=0)
                            for _, g in unseen.group_by("domain", maintain_order=True)])
    frame = training_frame(cfg)
    train, test = holdout_split([f"{d}/{s}" for d, s in frame.select("domain", "subdomain").iter_rows()],
                                cfg.holdout_fraction, cfg.seed)
    held = frame[test.tolist()].with_columns(set=pl.lit("pools"))
    held = pl.concat([g.sample(min(args.pool_sample, g.height), seed=0) for _, g in held.group_by("domain")])
    rows = pl.concat([unseen, held.select("text", "domain", "source", "set")])
    methods = args.methods.split(",")
    timings = {}

    if "knn" in methods:
        clf = load_or_fit(cfg)
        started = time.perf_counter()
        clf.embedder  # noqa: B018 -- load the model outside the timing: a run loads it once
        print(f"  knn: model loaded in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        pred = clf.classify(rows["text"].to_list())
        timings["knn"] = time.perf_counter() - started
        # The held-out pool rows are among the labelled texts: classify them again by a fit without them.
        embedded = clf.embedder.embed(held["text"].to_list())
        held_out = KnnClassifier(cfg.k, balanced=cfg.knn_balanced).fit(
            clf.embeddings[train], clf.domains[train].tolist(), [s or None for s in clf.subdomains[train]])
        pred = pl.concat([pred.head(unseen.height), held_out.predict(embedded)])
        far = pred["top_similarity"] < cfg.knn_min_similarity  # as the stage does
        rows = rows.with_columns(knn=pl.when(far).then(pl.lit("other")).otherwise(pred["domain"]),
                                 knn_conf=pred["confidence"], knn_sim=pred["top_similarity"])
    if "zero_shot" in methods:
        from pipeline.domain_classifier.zero_shot import ZeroShotClassifier
        from pipeline.engines.factory import make_engine
        from schemas.config import EngineConfig

        engine_cfg = EngineConfig(model=args.model) if args.model else EngineConfig()
        engine = make_engine(engine_cfg, announce=print).unwrap()
        from pipeline.domain_classifier.zero_shot import calibrated

        zs = ZeroShotClassifier(engine, cfg.descriptions, cfg.examples)
        started = time.perf_counter()
        pred = zs.classify(rows["text"].to_list(), probabilities=True)
        timings["zero_shot"] = time.perf_counter() - started
        prior = zs.prior()
        print("prior over the domains (content-free inputs):", {d: round(p, 3) for d, p in prior.items()})
        probs = pred.select(pl.col("^p_.*$"))
        rows = rows.with_columns(zero_shot=pred["domain"].fill_null("unparsed"), zero_shot_conf=pred["confidence"],
                                 *probs.get_columns())

        def recalibrated(by: dict[str, float]) -> pl.Series:
            picks = []
            for row in rows.iter_rows(named=True):
                dist = {d: row[f"p_{d}"] for d in cfg.descriptions}
                cal = None if any(v is None for v in dist.values()) else calibrated(dist, by)
                picks.append(max(cal, key=cal.get) if cal else "unparsed")
            return pl.Series(picks)

        # ...and by the mean distribution over these questions (transductive: no labels used)
        batch = {d: probs[f"p_{d}"].mean() or 0.0 for d in cfg.descriptions}
        print("mean distribution over the questions:", {d: round(p, 3) for d, p in batch.items()})
        rows = rows.with_columns(zero_shot_cal=recalibrated(prior), zero_shot_bcal=recalibrated(batch))
        methods += ["zero_shot_cal", "zero_shot_bcal"]
    cols = [m for m in methods if m in rows.columns]
    if {"knn", "zero_shot"} <= set(rows.columns):
        # The combined classifier's own rule, at the configured cut and a sweep.
        from pipeline.domain_classifier.classify import knn_trusted

        for trust in sorted({cfg.knn_trust_similarity, 0.6, 0.7, 0.9}):
            trusted = knn_trusted(cfg, trust, similarity="knn_sim", confidence="knn_conf")
            name = "combined" if trust == cfg.knn_trust_similarity else f"comb@{trust}"
            rows = rows.with_columns(pl.when(trusted).then(pl.col("knn")).otherwise(pl.col("zero_shot")).alias(name))
            cols.append(name)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    rows.write_parquet(args.out)
    print(f"{rows.height} questions ({unseen.height} unseen, {held.height} held-out pool rows); predictions in {args.out}")
    for m, s in timings.items():
        print(f"  {m}: {s:.1f} s, {1000 * s / rows.height:.0f} s per 1,000 questions")
    accuracy_table(rows, cols)


if __name__ == "__main__":
    main()
