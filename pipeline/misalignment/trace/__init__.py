"""Trace a bad case to the stored samples behind it.

    trace_case(store, case_id, methods=TRACE_METHODS, top=50) -> frame

Three methods rank candidates independently, and reciprocal rank fusion combines them:
  signature  the cheap rules the bad output fails (signature.py); samples failing the same ones
  lexical    BM25 of prompt + bad output over question, reasoning and answer (lexical.py)
  embedding  MiniLM cosine nearest neighbours (neighbours.py)
  fused      reciprocal rank fusion of the above (fuse.py)
Every method's top candidates and the fused ranking go to `trace_candidates` under one new
trace_id (rank 1 = best; detail says why). The result is the fused top with each method's rank
and the exports that shipped it.
"""

from __future__ import annotations

import uuid

import polars as pl

from pipeline.misalignment.cases import load_case
from pipeline.misalignment.trace.fuse import fuse
from pipeline.misalignment.trace.lexical import lexical_candidates
from pipeline.misalignment.trace.neighbours import embedding_candidates, sample_text
from pipeline.misalignment.trace.signature import case_signature, signature_candidates
from pipeline.progress import Progress
from pipeline.stages.synthesize import split_think
from pipeline.store import Store, failing_now_sql, kept_samples_sql, now
from schemas.bad_case import TRACE_METHODS, BadCase
from schemas.rows import TRACE_CANDIDATE

SEARCH_METHODS = tuple(m for m in TRACE_METHODS if m != "fused")


def candidates(store: Store, case: BadCase, method: str, top: int, config=None,
               progress: Progress | None = None) -> pl.DataFrame:
    """One method's ranked candidates: sample_id, score, rank, detail."""
    query = f"{case.prompt}\n{case.bad_output}"
    if method == "signature":
        return signature_candidates(store, case_signature(case, config), top)
    if method == "lexical":
        return lexical_candidates(store, query, top, progress)
    if method == "embedding":
        reasoning, answer, _ = split_think(case.bad_output)
        return embedding_candidates(store, sample_text(case.prompt, reasoning, answer), top, progress=progress)
    raise ValueError(f"no trace method {method!r}; methods: {TRACE_METHODS}")


def trace_case(store: Store, case_id: str, *, methods=TRACE_METHODS, top: int = 50, config=None,
               progress: Progress | None = None) -> pl.DataFrame:
    """Trace one stored case (see the module docstring); returns the fused top, best first, with
    trace_id, case_id, <method>_rank per method run and exports."""
    unknown = sorted(set(methods) - set(TRACE_METHODS))
    if unknown:
        raise ValueError(f"no trace method(s) {unknown}; methods: {TRACE_METHODS}")
    case = load_case(store, case_id)
    trace_id = now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    ranked = {m: candidates(store, case, m, top, config, progress) for m in SEARCH_METHODS if m in methods}
    fused = fuse(ranked, top)
    written = dict(ranked) | ({"fused": fused} if "fused" in methods else {})
    rows = [f.select("sample_id", "score", "rank", "detail").with_columns(method=pl.lit(m))
            for m, f in written.items() if not f.is_empty()]
    if rows:
        store.insert("trace_candidates", pl.concat(rows).with_columns(
            trace_id=pl.lit(trace_id), case_id=pl.lit(case_id), created_at=pl.lit(now())).select(
            [pl.col(c).cast(t) for c, t in TRACE_CANDIDATE.items()]))
    return (fused.join(candidate_status(store, fused["sample_id"].to_list()), on="sample_id", how="left")
            .with_columns(trace_id=pl.lit(trace_id), case_id=pl.lit(case_id),
                          exports=pl.col("exports").fill_null(pl.lit([], dtype=pl.List(pl.String))),
                          failed_rules=pl.col("failed_rules").fill_null(pl.lit([], dtype=pl.List(pl.String))))
            .sort("rank"))


def candidate_status(store: Store, ids: list[str]) -> pl.DataFrame:
    """sample_id, exports (the export ids that selected each sample; empty: never shipped), kept
    (would the next export consider it: kept_samples) and failed_rules (its own verdicts that
    fail now), for these samples alone (the views' queries restricted to them: milliseconds at
    10^6 samples, where the views themselves take seconds)."""
    if not ids:
        return pl.DataFrame(schema={"sample_id": pl.String, "exports": pl.List(pl.String), "kept": pl.Boolean,
                                    "failed_rules": pl.List(pl.String)})
    return store.frame(f"""
        WITH failing AS (SELECT sample_id, list(rule ORDER BY rule) AS rules FROM ({failing_now_sql('_ids')})
                         GROUP BY sample_id),
             kept AS ({kept_samples_sql('_ids')})
        SELECT i.sample_id,
               coalesce(list(DISTINCT sel.export_id ORDER BY sel.export_id) FILTER (WHERE sel.export_id IS NOT NULL),
                        []) AS exports,
               i.sample_id IN (SELECT sample_id FROM kept) AS kept,
               coalesce(any_value(f.rules), []) AS failed_rules
        FROM _ids i LEFT JOIN selections sel USING (sample_id) LEFT JOIN failing f USING (sample_id)
        GROUP BY i.sample_id""", _ids=pl.DataFrame({"sample_id": ids}, schema={"sample_id": pl.String}))
