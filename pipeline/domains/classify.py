"""Assign each question a domain: its pool's metadata when the pool declared one, else kNN.

Rows go to `question_domains` keyed by (question_id, method, version); bump a method's version
when its behaviour changes. Each row carries the hash of the settings it was made with
(method_hashes): a question is classified again when they change (k, taxonomy, labelled rows per
sub-domain, seed, the confidence cut, the embedding model), and its row is replaced.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from pipeline.domains.knn import KnnClassifier
from pipeline.domains.labelled import SOURCE_SUBDOMAINS, SUBDOMAIN_ALIASES
from pipeline.hashing import stable_hash
from pipeline.progress import Progress
from pipeline.store import Store, now
from schemas.domains import DomainConfig, DomainTaxonomy

VERSIONS = {"metadata": 1, "knn": 1}
OUTPUT_SCHEMA = {"question_id": pl.String, "method": pl.String, "version": pl.Int32, "domain": pl.String,
                 "subdomain": pl.String, "confidence": pl.Float64, "detail": pl.String}
ClassifierArg = KnnClassifier | Callable[[], KnnClassifier] | None


def metadata_subdomain(domain: str, raw: str | None, source: str | None, taxonomy: DomainTaxonomy) -> str | None:
    """The pool's sub-domain on the taxonomy: as given, via a known alias (MATH subject,
    TheoremQA subfield), or from the source name (e.g. scibench-quan); else None."""
    snake = re.sub(r"[^a-z0-9]+", "_", raw.lower()).strip("_") if raw else None
    for candidate in (raw, SUBDOMAIN_ALIASES.get(raw or ""), snake, SOURCE_SUBDOMAINS.get(source or "")):
        if candidate and taxonomy.has(domain, candidate):
            return candidate
    return None


def method_hashes(cfg: DomainConfig) -> dict[str, str]:
    """What each method's rows depend on: metadata on the taxonomy (sub-domain mapping), kNN also on
    the classifier's fit and the confidence cut (it is written into `detail`)."""
    from pipeline.domains.embed import model_id

    try:
        embedding_model = model_id()
    except ImportError:  # installed without the model extra: kNN cannot run, metadata still can
        embedding_model = None
    taxonomy = cfg.taxonomy.model_dump(mode="json")
    return {"metadata": stable_hash("metadata", VERSIONS["metadata"], taxonomy),
            "knn": stable_hash("knn", VERSIONS["knn"], taxonomy, cfg.k, cfg.max_per_subdomain, cfg.seed,
                               cfg.min_confidence, embedding_model)}


def planned_method(questions: pl.DataFrame, cfg: DomainConfig) -> pl.Series:
    """metadata where the question's domain (null: its pool gave none) is in the taxonomy."""
    listed = [d for d, _ in cfg.taxonomy.items()]
    has_meta = questions["domain"].is_in(listed).fill_null(False)
    if cfg.classifier == "knn":
        return pl.Series("method", ["knn"] * questions.height, pl.String)
    if cfg.classifier == "metadata":
        return pl.Series("method", ["metadata"] * questions.height, pl.String)
    return pl.Series("method", ["metadata" if m else "knn" for m in has_meta], pl.String)


def classify_frame(questions: pl.DataFrame, cfg: DomainConfig, classifier: ClassifierArg = None,
                   progress: Progress | None = None) -> pl.DataFrame:
    """questions (question_id, text, domain, subdomain[, source]) -> OUTPUT_SCHEMA rows.
    The classifier (or a function making it) is used only when some question needs kNN."""
    blank = questions.filter(pl.col("text").is_null() | (pl.col("text").str.strip_chars() == ""))
    if blank.height:
        ids = blank["question_id"].head(5).to_list()
        raise ValueError(f"{blank.height} question(s) have no text to classify: {ids}")
    q = questions.with_columns(method=planned_method(questions, cfg))
    if "source" not in q.columns:
        q = q.with_columns(source=pl.lit(None, pl.String))
    meta_rows = []
    for qid, domain, raw, source in q.filter(pl.col("method") == "metadata").select(
            "question_id", "domain", "subdomain", "source").iter_rows():
        if not cfg.taxonomy.has(domain):  # classifier "metadata" and the pool gave no domain
            meta_rows.append((qid, "other", None, None, "no domain from the pool"))
            continue
        sub = metadata_subdomain(domain, raw, source, cfg.taxonomy)
        detail = f"pool {source}" + (f"; subdomain {raw!r} not in taxonomy" if raw and sub is None else "")
        meta_rows.append((qid, domain, sub, 1.0, detail))
    meta = pl.DataFrame(meta_rows, schema=["question_id", "domain", "subdomain", "confidence", "detail"],
                        orient="row").with_columns(method=pl.lit("metadata"))
    todo = q.filter(pl.col("method") == "knn")
    knn = pl.DataFrame()
    if todo.height:
        if classifier is None:
            raise ValueError(f"{todo.height} question(s) need kNN but no classifier was given "
                             "(pass pipeline.domains.knn.load_or_fit(cfg), or a function returning it)")
        clf = classifier if isinstance(classifier, KnnClassifier) else classifier()
        pred = clf.classify(todo["text"].to_list(), progress=progress)
        knn = pl.concat([todo.select("question_id"), pred], how="horizontal").with_columns(
            method=pl.lit("knn"),
            detail=pl.format("top similarity {}", pl.col("top_similarity").round(3))
            + pl.when(pl.col("confidence") < cfg.min_confidence).then(pl.lit("; low confidence"))
            .otherwise(pl.lit("")),
        ).drop("top_similarity")
    parts = [f for f in (meta, knn) if f.height]
    out = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame(schema=OUTPUT_SCHEMA)
    out = out.with_columns(version=pl.col("method").replace_strict(VERSIONS, return_dtype=pl.Int32))
    return out.select([pl.col(c).cast(t) for c, t in OUTPUT_SCHEMA.items()])


@dataclass
class DomainReport:
    metadata: int
    knn: int
    low_confidence: int
    already_done: int


def classify_questions(store: Store, cfg: DomainConfig, run_id: str, question_ids: list[str],
                       classifier: ClassifierArg = None, metadata_sources: set[str] | None = None,
                       progress: Progress | None = None) -> DomainReport:
    """Classify the questions that lack a row for their (method, version) made with the current
    settings. metadata_sources: the `source` values whose pools declare a domain. None: every
    source does, except that a stored "other" counts as no domain (ingest writes "other" when a
    pool gives none) and so does a domain adopted from kNN (pipeline/stages/domains.py)."""
    probe = pl.DataFrame({"question_id": question_ids}, schema={"question_id": pl.String})
    questions = store.frame("""
        SELECT question_id, text, domain, subdomain, source,
               EXISTS (SELECT 1 FROM question_domains d WHERE d.question_id = q.question_id AND d.adopted) AS adopted
        FROM questions q WHERE question_id IN (SELECT question_id FROM probe) ORDER BY question_id""", probe=probe)
    declared = pl.col("source").is_in(list(metadata_sources)) if metadata_sources is not None \
        else (pl.col("domain") != "other") & ~pl.col("adopted")
    questions = questions.with_columns(domain=pl.when(declared).then(pl.col("domain")))  # null: not metadata
    hashes = method_hashes(cfg)
    planned = questions.with_columns(method=planned_method(questions, cfg)).with_columns(
        version=pl.col("method").replace_strict(VERSIONS, return_dtype=pl.Int32),
        config_hash=pl.col("method").replace_strict(hashes, return_dtype=pl.String))
    todo = store.frame("""
        SELECT p.* EXCLUDE (method, version, config_hash) FROM planned p
        WHERE NOT EXISTS (SELECT 1 FROM question_domains d WHERE d.question_id = p.question_id
                          AND d.method = p.method AND d.version = p.version AND d.config_hash = p.config_hash)
        ORDER BY p.question_id""", planned=planned)
    rows = classify_frame(todo.drop("adopted"), cfg, classifier, progress)
    # A replaced row keeps its adoption until the stage's adoption step looks at the new answer.
    rows = rows.join(todo.select("question_id", "adopted"), on="question_id", how="left").with_columns(
        config_hash=pl.col("method").replace_strict(hashes, return_dtype=pl.String),
        adopted=pl.col("adopted") & (pl.col("method") == "knn"))
    store.replace("question_domains", rows.with_columns(run_id=pl.lit(run_id), created_at=pl.lit(now())))
    return DomainReport(
        metadata=rows.filter(pl.col("method") == "metadata").height,
        knn=rows.filter(pl.col("method") == "knn").height,
        low_confidence=rows.filter(pl.col("detail").str.ends_with("low confidence")).height,
        already_done=questions.height - todo.height,
    )
