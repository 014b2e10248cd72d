"""Domains stage: classify the run's questions (pipeline/domains) and adopt the deciding method's
confident answers (kNN, zero-shot or combined) for questions whose pool gave no domain, so
synthesis, style metrics and rebalancing see them.

questions.domain stays what the pool said unless it said nothing ("other"); question_domains
keeps every classification with its method, confidence and detail, so SQL shows why.
"""

from __future__ import annotations

import polars as pl

from pipeline.domain_classifier.classify import DomainReport, classify_questions
from pipeline.domain_classifier.zero_shot import ZeroShotClassifier
from pipeline.domain_classifier.embed import Embedder
from pipeline.domain_classifier.knn import load_or_fit
from pipeline.progress import Progress
from pipeline.stage import StageContext, StageReport
from pipeline.store import Store, transaction
from schemas.chat import ChatBackend
from schemas.domains import DomainConfig


def adopt_domains(store: Store, question_ids: list[str], min_confidence: float, method: str = "knn") -> int:
    """Questions whose pool gave no domain ("other", or a domain adopted earlier) take the domain
    and sub-domain of their current row of `method` (the deciding one) when it is confident and not
    "other"; an adopted domain whose answer is no longer confident or is "other" (the settings
    changed) goes back to "other". Returns how many questions changed."""
    probe = pl.DataFrame({"question_id": question_ids}, schema={"question_id": pl.String})
    changes = store.frame("""
        WITH knn AS (
            SELECT d.* FROM question_domains d WHERE d.method = ?
              AND d.question_id IN (SELECT question_id FROM probe)
            QUALIFY row_number() OVER (PARTITION BY d.question_id ORDER BY d.version DESC) = 1),
        decided AS (
            SELECT k.question_id, k.version, coalesce(k.adopted, false) AS was_adopted,
                   q.domain AS now_domain, q.subdomain AS now_subdomain,
                   k.domain <> 'other' AND coalesce(k.confidence, 0) >= ? AS take,
                   CASE WHEN take THEN k.domain ELSE 'other' END AS domain,
                   CASE WHEN take THEN k.subdomain END AS subdomain
            FROM knn k JOIN questions q USING (question_id)
            WHERE q.domain = 'other' OR coalesce(k.adopted, false))
        SELECT question_id, version, take, domain, subdomain FROM decided
        WHERE now_domain IS DISTINCT FROM domain OR now_subdomain IS DISTINCT FROM subdomain
           OR take <> was_adopted
    """, [method, min_confidence], probe=probe)
    if changes.height:
        store.con.register("_changes", changes.to_arrow())
        try:
            with transaction(store.con) as con:
                con.execute("""UPDATE questions SET domain = c.domain, subdomain = c.subdomain
                               FROM _changes c WHERE questions.question_id = c.question_id""")
                con.execute("""UPDATE question_domains SET adopted = c.take FROM _changes c
                               WHERE question_domains.question_id = c.question_id
                                 AND question_domains.method = ? AND question_domains.version = c.version""",
                            [method])
        finally:
            store.con.unregister("_changes")
    return changes.height


def classify_run_questions(store: Store, cfg: DomainConfig, run_id: str, question_ids: list[str],
                           progress: Progress | None = None, embedder: Embedder | None = None,
                           engine: ChatBackend | None = None) -> dict:
    """embedder: where embeddings are computed (None: a local Embedder, loaded only if needed;
    the Ray executor passes one that runs on Ray). engine: the model of the zero-shot rule
    (the run's engine; a lazy one is loaded only if a question needs it)."""
    report: DomainReport = classify_questions(
        store, cfg, run_id, question_ids, progress=progress,
        classifier=lambda: load_or_fit(cfg, embedder=embedder, progress=progress),
        zero_shot=(lambda: ZeroShotClassifier(engine, cfg.descriptions, cfg.examples)) if engine is not None else None,
        model=engine.model_name if engine is not None else None)
    method = cfg.method if cfg.method != "metadata" else "knn"
    return vars(report) | {"adopted": adopt_domains(store, question_ids, cfg.min_confidence, method)}


def run(ctx: StageContext) -> StageReport:
    """Classify the run's questions (embeddings where the executor computes them: this process,
    or Ray); the zero-shot rule, when a question needs it, asks the run's engine."""
    counts = classify_run_questions(ctx.store, ctx.config.domains, ctx.run_id, ctx.question_ids(), ctx.progress,
                                    embedder=ctx.run.executor.embedder(), engine=ctx.engine)
    notes = [f"[domains] {counts['knn']} questions classified by kNN, {counts['zero_shot']} by the zero-shot rule; "
             f"{counts['adopted']} adopted, {counts['other']} in no domain (SELECT * FROM question_domains)"] \
        if counts["knn"] or counts["zero_shot"] else []
    return StageReport(counts, notes)
