"""Tracing bad cases (pipeline/misalignment/trace) on a real DuckDB store of real samples (GSM8K,
MBPP, MATH-500 texts) with real verdicts from the project's rules, and planted canaries
(tests/misalignment/canaries.py): each method finds what it should, the fusion finds nearly all."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline.misalignment.trace import trace_case
from pipeline.misalignment.trace.fuse import fuse
from pipeline.misalignment.trace.lexical import index_dir, lexical_candidates
from pipeline.misalignment.trace.neighbours import embed_missing, embedder
from pipeline.misalignment.trace.signature import case_signature
from pipeline.store import Store, now
from schemas import rows
from schemas.bad_case import BadCase
from tests.misalignment.canaries import build_store

# A hand-written paraphrase of the first GSM8K train item (Natalia's clips): other words, same meaning.
PARAPHRASE = BadCase(
    prompt="A girl sold hair clips to 48 pals during April and only half that amount during May. "
           "What is the combined number she sold over the two months?",
    bad_output="<think>\nIn May she sold half of 48, that is 24. Adding both months: 48 + 24 = 72.\n</think>\n\n"
               "She sold $\\boxed{74}$ clips.", expected="72")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The store, its canaries and each canary case's trace (fused top 50 with method ranks)."""
    store, canaries = build_store(tmp_path_factory.mktemp("trace") / "curate.duckdb", n_math=100, n_code=20,
                                  per_kind=2)
    store.insert("bad_cases", pl.DataFrame([{
        "case_id": PARAPHRASE.case_id, "prompt": PARAPHRASE.prompt, "bad_output": PARAPHRASE.bad_output,
        "expected": PARAPHRASE.expected, "tags": [], "model": None, "source": "cli", "created_at": now()}],
        schema=rows.BAD_CASE))
    traces = {c.case.case_id: trace_case(store, c.case.case_id, top=50) for c in canaries}
    yield store, canaries, traces
    store.close()


def _rank(trace: pl.DataFrame, sample_id: str, column: str = "rank") -> int | None:
    hit = trace.filter(pl.col("sample_id") == sample_id)
    return hit[column][0] if hit.height else None


def test_fused_ranking_finds_the_planted_canaries(planted):
    _, canaries, traces = planted
    hits = [(_rank(traces[c.case.case_id], c.sample_id) or 99) <= 10 for c in canaries]
    assert sum(hits) / len(hits) >= 0.9, [(c.kind, _rank(traces[c.case.case_id], c.sample_id)) for c in canaries]


def test_every_method_and_the_fusion_are_stored_under_one_trace(planted):
    store, canaries, traces = planted
    trace = traces[canaries[0].case.case_id]
    trace_id = trace["trace_id"][0]
    stored = store.frame("SELECT method, count(*) AS n, min(rank) AS best, any_value(case_id) AS case_id "
                         "FROM trace_candidates WHERE trace_id = ? GROUP BY method", [trace_id])
    assert set(stored["method"]) == {"signature", "lexical", "embedding", "fused"}
    assert set(stored["best"]) == {1} and set(stored["case_id"]) == {canaries[0].case.case_id}
    fused = store.frame("SELECT sample_id, rank FROM trace_candidates WHERE trace_id = ? AND method = 'fused' "
                        "ORDER BY rank", [trace_id])
    assert fused["sample_id"].to_list() == trace["sample_id"].to_list()
    # the result says what shipped: canaries were exported in exp-1
    row = trace.filter(pl.col("sample_id") == canaries[0].sample_id).row(0, named=True)
    assert row["exports"] == ["exp-1"]


def test_candidates_say_whether_they_are_kept_and_what_fails(planted):
    store, canaries, traces = planted
    everything = pl.concat([t.select("sample_id", "kept", "failed_rules") for t in traces.values()]).unique("sample_id")
    status = store.frame("SELECT sample_id, kept, failed_rules FROM sample_status")
    expected = everything.select("sample_id").join(status, on="sample_id")
    mine = everything.sort("sample_id")
    assert mine["kept"].to_list() == expected.sort("sample_id")["kept"].to_list()
    assert mine["failed_rules"].to_list() == expected.sort("sample_id")["failed_rules"].to_list()
    assert mine["kept"].any() and not mine["kept"].all()  # both kinds among the candidates


def test_signature_finds_loops_and_self_identity(planted):
    store, canaries, traces = planted
    for c in canaries:
        if c.kind in ("loop", "identity"):
            trace = traces[c.case.case_id]
            assert _rank(trace, c.sample_id, "signature_rank") <= 2, c.kind  # the two canaries of a kind tie
            detail = store.scalar("SELECT detail FROM trace_candidates WHERE trace_id = ? AND method = 'signature' "
                                  "AND sample_id = ?", [trace["trace_id"][0], c.sample_id])
            assert ("repetition" if c.kind == "loop" else "self_identity") in detail


def test_case_signatures_name_the_failing_rules(planted):
    _, canaries, _ = planted
    signatures = {c.kind: case_signature(c.case) for c in canaries}
    assert "repetition" in signatures["loop"]
    assert "self_identity" in signatures["identity"]
    assert "answer_match" in signatures["wrong"]  # the case's `expected` is the reference
    assert {"truncation", "structure"} <= set(signatures["truncated"])
    assert "decontam_answer" in signatures["leak"]  # reproduces a MATH-500 solution
    assert "answer_match" in case_signature(PARAPHRASE)  # 74, expected 72


def test_lexical_finds_the_leaked_benchmark_solution(planted):
    store, canaries, traces = planted
    for c in canaries:
        if c.kind == "leak":
            assert _rank(traces[c.case.case_id], c.sample_id, "lexical_rank") == 1
            found = lexical_candidates(store, c.case.bad_output, top=5)
            assert found["sample_id"][0] == c.sample_id and found["detail"][0].startswith("terms: ")


def test_embedding_finds_a_paraphrase(planted):
    store, _, _ = planted
    trace = trace_case(store, PARAPHRASE.case_id, methods=("embedding", "fused"), top=10)
    natalia = store.frame("SELECT s.sample_id FROM samples s JOIN questions q USING (question_id) "
                          "WHERE q.text LIKE 'Natalia sold clips%'")["sample_id"].to_list()
    assert len(natalia) == 2
    assert set(natalia) <= set(trace.filter(pl.col("embedding_rank") <= 5)["sample_id"])


def test_indexes_are_reused_and_follow_new_samples(planted, tmp_path: Path):
    store, canaries, _ = planted
    store.con.execute("CHECKPOINT")
    shutil.copy(store.path, tmp_path / "copy.duckdb")
    with Store(tmp_path / "copy.duckdb") as copy:
        lexical_candidates(copy, "clips", top=3)
        saved = index_dir(copy) / "fingerprint.json"
        built = saved.stat().st_mtime_ns
        lexical_candidates(copy, "clips", top=3)
        assert saved.stat().st_mtime_ns == built  # fresh: reused
        copy.insert("samples", copy.frame("SELECT * REPLACE ('zz-new' AS sample_id, 'Quokkas hop about.' AS "
                                          "reasoning) FROM samples LIMIT 1"))
        found = lexical_candidates(copy, "quokkas", top=3)
        assert found["sample_id"].to_list() == ["zz-new"]  # stale: rebuilt with the new sample
        assert embed_missing(copy, embedder()) == 1  # only the new sample is embedded
        assert embed_missing(copy, embedder()) == 0


def test_reciprocal_rank_fusion_rewards_agreement():
    a = pl.DataFrame({"sample_id": ["x", "y", "z"], "rank": [1, 2, 3]})
    b = pl.DataFrame({"sample_id": ["z", "w"], "rank": [1, 2]})
    fused = fuse({"signature": a, "lexical": b}, top=3)
    assert fused["sample_id"].to_list() == ["z", "x", "w"]  # z: 1/63 + 1/61 beats x's 1/61
    assert fused.row(0, named=True)["detail"] == "signature #3, lexical #1"


def test_the_trace_flow_traces_every_stored_case(planted, tmp_path: Path, prefect_server):
    from flows.trace_flow import trace_cases

    store, canaries, _ = planted
    store.con.execute("CHECKPOINT")
    shutil.copy(store.path, tmp_path / "flow.duckdb")
    wanted = [c.case.case_id for c in canaries[:2]]
    result = trace_cases(db=str(tmp_path / "flow.duckdb"), case_ids=wanted, methods=["signature", "lexical", "fused"],
                         top=20)
    assert list(result) == wanted and all(r["candidates"] > 0 for r in result.values())
    assert canaries[0].sample_id in result[wanted[0]]["top"]
    with Store(tmp_path / "flow.duckdb", read_only=True) as copy:
        methods = copy.frame("SELECT DISTINCT method FROM trace_candidates WHERE trace_id = ?",
                             [result[wanted[0]]["trace_id"]])["method"]
    assert set(methods) == {"signature", "lexical", "fused"}
