"""Domains stage: classify the run's questions (pipeline/domains) and adopt confident kNN answers
for questions whose pool gave no domain, so synthesis, style metrics and rebalancing see them.

questions.domain stays what the pool said unless it said nothing ("other"); question_domains
keeps every classification with its method, confidence and detail, so SQL shows why.
"""

from __future__ import annotations

import polars as pl

from pipeline.domains.classify import DomainReport, classify_questions
from pipeline.domains.embed import Embedder
from pipeline.domains.knn import load_or_fit
from pipeline.progress import Progress
from pipeline.store import Store
from schemas.domains import DomainConfig


def adopt_knn_domains(store: Store, question_ids: list[str], min_confidence: float) -> int:
    """Set domain/subdomain of "other" questions from their newest kNN row at or above
    min_confidence. Returns how many questions changed."""
    probe = pl.DataFrame({"question_id": question_ids}, schema={"question_id": pl.String})
    adopted = store.frame("""
        SELECT d.question_id, d.domain, d.subdomain FROM question_domains d
        JOIN questions q USING (question_id)
        WHERE q.domain = 'other' AND d.method = 'knn' AND d.domain <> 'other' AND d.confidence >= ?
          AND d.question_id IN (SELECT question_id FROM probe)
        QUALIFY row_number() OVER (PARTITION BY d.question_id ORDER BY d.version DESC) = 1
    """, [min_confidence], probe=probe)
    if adopted.height:
        store.con.register("_adopted", adopted.to_arrow())
        try:
            store.con.execute("""UPDATE questions SET domain = a.domain, subdomain = a.subdomain
                                 FROM _adopted a WHERE questions.question_id = a.question_id""")
        finally:
            store.con.unregister("_adopted")
    return adopted.height


def classify_run_questions(store: Store, cfg: DomainConfig, run_id: str, question_ids: list[str],
                           progress: Progress | None = None, embedder: Embedder | None = None) -> dict:
    """embedder: where embeddings are computed (None: a local Embedder, loaded only if needed;
    flows/scaleout_flow.py passes one that runs on Ray)."""
    report: DomainReport = classify_questions(
        store, cfg, run_id, question_ids, progress=progress,
        classifier=lambda: load_or_fit(cfg, embedder=embedder, progress=progress))
    return vars(report) | {"adopted": adopt_knn_domains(store, question_ids, cfg.min_confidence)}
