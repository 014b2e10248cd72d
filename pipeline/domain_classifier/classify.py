"""Assign each question a domain: its pool's metadata when the pool declared one, else a classifier.

The classifiers (DomainConfig.classifier): `knn` over the labelled pools' embeddings, `zero_shot`
(the engine's model over the taxonomy's descriptions, pipeline/domain_classifier/zero_shot.py) and `combined`
(kNN where a labelled question is very close, zero-shot elsewhere). Every method that ran leaves
its row, and `combined` adds a row with the decision and which method made it.

Rows go to `question_domains` keyed by (question_id, method, version); bump a method's version
when its behaviour changes. Each row carries the hash of the settings it was made with
(method_hashes): a question is classified again when they change (k, taxonomy, descriptions,
labelled rows per sub-domain, seed, the cuts, the embedding or judging model), and its row is replaced.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from pipeline.domain_classifier.knn import KnnClassifier
from pipeline.domain_classifier.labelled import SOURCE_SUBDOMAINS, SUBDOMAIN_ALIASES
from pipeline.domain_classifier.zero_shot import PROMPT_VERSION, ZeroShotClassifier
from pipeline.hashing import stable_hash
from pipeline.progress import Progress
from pipeline.store import Store, now
from schemas.domains import DomainConfig, DomainTaxonomy

# knn 2: "other" below knn_min_similarity (1 gave every question a domain, however far its neighbours);
# 3: fitted on data/labels/domains_train.jsonl too (varied forms and sources, `other` included), votes
# balanced by domain (knn_balanced)
VERSIONS = {"metadata": 1, "knn": 3, "zero_shot": 1, "combined": 1}
OUTPUT_SCHEMA = {"question_id": pl.String, "method": pl.String, "version": pl.Int32, "domain": pl.String,
                 "subdomain": pl.String, "confidence": pl.Float64, "detail": pl.String}
ClassifierArg = KnnClassifier | Callable[[], KnnClassifier] | None
ZeroShotArg = ZeroShotClassifier | Callable[[], ZeroShotClassifier] | None


def metadata_subdomain(domain: str, raw: str | None, source: str | None, taxonomy: DomainTaxonomy) -> str | None:
    """The pool's sub-domain on the taxonomy: as given, via a known alias (MATH subject,
    TheoremQA subfield), or from the source name (e.g. scibench-quan); else None."""
    snake = re.sub(r"[^a-z0-9]+", "_", raw.lower()).strip("_") if raw else None
    for candidate in (raw, SUBDOMAIN_ALIASES.get(raw or ""), snake, SOURCE_SUBDOMAINS.get(source or "")):
        if candidate and taxonomy.has(domain, candidate):
            return candidate
    return None


def method_hashes(cfg: DomainConfig, model: str | None = None) -> dict[str, str]:
    """What each method's rows depend on: metadata on the taxonomy (sub-domain mapping), kNN also on
    the classifier's fit and its cuts, zero-shot on the descriptions and the model (`model`: the
    engine's), combined on both and the trust cut."""
    from pipeline.domain_classifier.embed import model_id

    try:
        embedding_model = model_id()
    except ImportError:  # installed without the model extra: kNN cannot run, metadata still can
        embedding_model = None
    taxonomy = cfg.taxonomy.model_dump(mode="json")
    knn = stable_hash("knn", VERSIONS["knn"], taxonomy, cfg.k, cfg.max_per_subdomain, cfg.seed, cfg.min_confidence,
                      cfg.knn_min_similarity, embedding_model, cfg.knn_balanced)
    zero_shot = stable_hash("zero_shot", VERSIONS["zero_shot"], PROMPT_VERSION, cfg.descriptions, cfg.examples, taxonomy,
                            model)
    return {"metadata": stable_hash("metadata", VERSIONS["metadata"], taxonomy), "knn": knn, "zero_shot": zero_shot,
            "combined": stable_hash("combined", VERSIONS["combined"], knn, zero_shot, cfg.knn_trust_similarity)}


def planned_method(questions: pl.DataFrame, cfg: DomainConfig) -> pl.Series:
    """metadata where the question's domain (null: its pool gave none) is in the taxonomy and the
    classifier uses metadata; the configured method elsewhere (the one whose row decides)."""
    listed = [d for d, _ in cfg.taxonomy.items()]
    has_meta = questions["domain"].is_in(listed).fill_null(False)
    if cfg.classifier == "metadata":
        return pl.Series("method", ["metadata"] * questions.height, pl.String)
    if not cfg.uses_metadata:
        return pl.Series("method", [cfg.method] * questions.height, pl.String)
    return pl.Series("method", ["metadata" if m else cfg.method for m in has_meta], pl.String)


def _knn_rows(todo: pl.DataFrame, cfg: DomainConfig, classifier: ClassifierArg, progress) -> pl.DataFrame:
    if classifier is None:
        raise ValueError(f"{todo.height} question(s) need kNN but no classifier was given "
                         "(pass pipeline.domain_classifier.knn.load_or_fit(cfg), or a function returning it)")
    clf = classifier if isinstance(classifier, KnnClassifier) else classifier()
    pred = clf.classify(todo["text"].to_list(), progress=progress)
    far = pl.col("top_similarity") < cfg.knn_min_similarity
    return pl.concat([todo.select("question_id"), pred], how="horizontal").with_columns(
        method=pl.lit("knn"),
        domain=pl.when(far).then(pl.lit("other")).otherwise(pl.col("domain")),
        subdomain=pl.when(far).then(pl.lit(None, pl.String)).otherwise(pl.col("subdomain")),
        detail=pl.format("top similarity {}", pl.col("top_similarity").round(3))
        + pl.when(far).then(pl.format(" < knn_min_similarity {}: like no labelled pool", pl.lit(cfg.knn_min_similarity)))
        .when(pl.col("confidence") < cfg.min_confidence).then(pl.lit("; low confidence")).otherwise(pl.lit("")),
    )


def _zero_shot_rows(todo: pl.DataFrame, zero_shot: ZeroShotArg, knn: pl.DataFrame | None, progress) -> pl.DataFrame:
    if zero_shot is None:
        raise ValueError(f"{todo.height} question(s) need the zero-shot domain rule but no engine was given")
    clf = zero_shot if isinstance(zero_shot, ZeroShotClassifier) else zero_shot()
    pred = clf.classify(todo["text"].to_list(), progress=progress)
    rows = pl.concat([todo.select("question_id"), pred], how="horizontal").with_columns(method=pl.lit("zero_shot"))
    if knn is None:
        return rows.with_columns(subdomain=pl.lit(None, pl.String))
    # The sub-domain comes from kNN when kNN found the same domain (the model names domains only).
    agree = knn.select("question_id", knn_domain="domain", knn_sub="subdomain")
    return rows.join(agree, on="question_id", how="left").with_columns(
        subdomain=pl.when(pl.col("domain") == pl.col("knn_domain")).then(pl.col("knn_sub"))).drop(
        "knn_domain", "knn_sub")


def knn_trusted(cfg: DomainConfig, trust: float | None = None, similarity: str = "top_similarity",
                confidence: str = "confidence") -> pl.Expr:
    """Where the combined classifier takes kNN's answer: a labelled text at least `trust` similar
    (default knn_trust_similarity) and a confident vote; the zero-shot rule decides elsewhere."""
    trust = cfg.knn_trust_similarity if trust is None else trust
    return ((pl.col(similarity) >= trust) & (pl.col(confidence) >= cfg.min_confidence)).fill_null(False)


def _classified(todo: pl.DataFrame, cfg: DomainConfig, classifier: ClassifierArg, zero_shot: ZeroShotArg,
                progress) -> list[pl.DataFrame]:
    """The rows of every method the configured one needs, the deciding method's included."""
    if cfg.method == "knn":
        return [_knn_rows(todo, cfg, classifier, progress).drop("top_similarity")]
    if cfg.method == "zero_shot":
        return [_zero_shot_rows(todo, zero_shot, None, progress)]
    knn = _knn_rows(todo, cfg, classifier, progress)
    trusted = knn_trusted(cfg)
    ask = knn.filter(~trusted)
    llm = _zero_shot_rows(todo.join(ask.select("question_id"), on="question_id"), zero_shot, knn, progress) \
        if ask.height else pl.DataFrame()
    decided = knn.filter(trusted).with_columns(
        detail=pl.format("kNN: top similarity {} >= {}, vote {}", pl.col("top_similarity").round(3),
                         pl.lit(cfg.knn_trust_similarity), pl.col("confidence").round(2)))
    if llm.height:
        asked = llm.join(knn.select("question_id", knn_domain="domain", knn_sim="top_similarity"),
                         on="question_id").with_columns(
            detail=pl.col("detail") + pl.format("; kNN said {} (top similarity {})", pl.col("knn_domain"),
                                                pl.col("knn_sim").round(3)))
        decided = pl.concat([decided, asked.drop("knn_domain", "knn_sim")], how="diagonal_relaxed")
    combined = decided.with_columns(method=pl.lit("combined")).select("question_id", "method", "domain", "subdomain",
                                                                      "confidence", "detail")
    return [knn.drop("top_similarity"), llm, combined]


def classify_frame(questions: pl.DataFrame, cfg: DomainConfig, classifier: ClassifierArg = None,
                   progress: Progress | None = None, zero_shot: ZeroShotArg = None) -> pl.DataFrame:
    """questions (question_id, text, domain, subdomain[, source]) -> OUTPUT_SCHEMA rows.
    The kNN classifier and the zero-shot rule (or functions making them) are used only when some
    question needs them."""
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
    todo = q.filter(pl.col("method") != "metadata")
    parts = [meta]
    if todo.height:
        parts += _classified(todo.select("question_id", "text"), cfg, classifier, zero_shot, progress)
    parts = [f for f in parts if f.height]
    out = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame(schema=OUTPUT_SCHEMA)
    out = out.with_columns(version=pl.col("method").replace_strict(VERSIONS, return_dtype=pl.Int32))
    return out.select([pl.col(c).cast(t) for c, t in OUTPUT_SCHEMA.items()])


@dataclass
class DomainReport:
    metadata: int
    knn: int
    low_confidence: int
    already_done: int
    zero_shot: int = 0  # questions the model classified
    other: int = 0  # questions the deciding method put in no domain


def classify_questions(store: Store, cfg: DomainConfig, run_id: str, question_ids: list[str],
                       classifier: ClassifierArg = None, metadata_sources: set[str] | None = None,
                       progress: Progress | None = None, zero_shot: ZeroShotArg = None,
                       model: str | None = None) -> DomainReport:
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
    hashes = method_hashes(cfg, model)
    planned = questions.with_columns(method=planned_method(questions, cfg)).with_columns(
        version=pl.col("method").replace_strict(VERSIONS, return_dtype=pl.Int32),
        config_hash=pl.col("method").replace_strict(hashes, return_dtype=pl.String))
    todo = store.frame("""
        SELECT p.* EXCLUDE (method, version, config_hash) FROM planned p
        WHERE NOT EXISTS (SELECT 1 FROM question_domains d WHERE d.question_id = p.question_id
                          AND d.method = p.method AND d.version = p.version AND d.config_hash = p.config_hash)
        ORDER BY p.question_id""", planned=planned)
    rows = classify_frame(todo.drop("adopted"), cfg, classifier, progress, zero_shot)
    # A replaced row keeps its adoption until the stage's adoption step looks at the new answer.
    rows = rows.join(todo.select("question_id", "adopted"), on="question_id", how="left").with_columns(
        config_hash=pl.col("method").replace_strict(hashes, return_dtype=pl.String),
        adopted=pl.col("adopted") & (pl.col("method") == cfg.method))
    store.replace("question_domains", rows.with_columns(run_id=pl.lit(run_id), created_at=pl.lit(now())))
    return DomainReport(
        metadata=rows.filter(pl.col("method") == "metadata").height,
        knn=rows.filter(pl.col("method") == "knn").height,
        low_confidence=rows.filter(pl.col("detail").str.ends_with("low confidence")).height,
        already_done=questions.height - todo.height,
        zero_shot=rows.filter(pl.col("method") == "zero_shot").height,
        other=rows.filter((pl.col("method") == cfg.method) & (pl.col("domain") == "other")).height,
    )
