"""Rebalancing (pipeline/export/rebalance.py) and shard export (pipeline/export/shards.py)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from pipeline.export.shards import SHARD_SCHEMA, chat_records, write_shards
from pipeline.export.rebalance import _quotas, rebalance
from schemas.config import RebalanceConfig
from schemas.shard import ShardManifest, ShortfallRow

KEPT_SCHEMA = {"sample_id": pl.String, "question_id": pl.String, "domain": pl.String, "difficulty": pl.Float64}
TARGETS = {"math": 0.4, "code": 0.2, "science": 0.2, "logic": 0.2}


def kept(spec: dict[str, tuple[int, int]], difficulty=lambda domain, i: round(i / 100, 2)) -> pl.DataFrame:
    """{domain: (questions, samples per question)} -> kept samples; question i has difficulty i/100."""
    rows = [
        {"sample_id": f"{d}-q{i:03d}-s{j}", "question_id": f"{d}-q{i:03d}", "domain": d,
         "difficulty": difficulty(d, i)}
        for d, (n_q, per_q) in spec.items() for i in range(n_q) for j in range(per_q)
    ]
    return pl.DataFrame(rows, schema=KEPT_SCHEMA)


def counts(selection) -> dict[str, int]:
    return dict(Counter(selection.chosen["domain"].to_list()))


def question_of(sample_id: str) -> str:
    return sample_id.rsplit("-s", 1)[0]


# --- rebalance: best_effort -----------------------------------------------------------------


def test_best_effort_quotas_follow_the_targets():
    frame = kept({"math": (30, 2), "code": (30, 2), "science": (30, 2), "logic": (30, 2)})
    sel = rebalance(frame, RebalanceConfig(targets=TARGETS, max_samples=50))
    assert counts(sel) == {"math": 20, "code": 10, "science": 10, "logic": 10}
    assert sel.shortfall == []
    assert sel.chosen.columns == ["sample_id", "domain", "difficulty", "reason"]
    assert sel.chosen["sample_id"].n_unique() == 50


def test_best_effort_total_is_capped_by_what_is_kept():
    frame = kept({"math": (4, 1), "code": (2, 1), "science": (2, 1), "logic": (2, 1)})
    sel = rebalance(frame, RebalanceConfig(targets=TARGETS, max_samples=1000))
    assert counts(sel) == {"math": 4, "code": 2, "science": 2, "logic": 2}
    assert sel.shortfall == []


def test_harder_questions_come_first_within_a_domain():
    frame = kept({"math": (20, 1), "code": (20, 1), "science": (20, 1), "logic": (20, 1)})
    sel = rebalance(frame, RebalanceConfig(targets=TARGETS, max_samples=20))
    math = sel.chosen.filter(pl.col("domain") == "math")
    assert math["difficulty"].to_list() == [0.19, 0.18, 0.17, 0.16, 0.15, 0.14, 0.13, 0.12]
    code = sel.chosen.filter(pl.col("domain") == "code")
    assert sorted(code["difficulty"].to_list()) == [0.16, 0.17, 0.18, 0.19]
    assert math["reason"][0] == "math: rank 1 by difficulty 0.19 (quota 8)"


def test_unknown_difficulty_ranks_as_easiest():
    frame = kept({"math": (4, 1)}, difficulty=lambda d, i: None if i < 2 else 0.1 * i)
    sel = rebalance(frame, RebalanceConfig(targets={"math": 1.0}, max_samples=2))
    assert sorted(sel.chosen["sample_id"].to_list()) == ["math-q002-s0", "math-q003-s0"]
    full = rebalance(frame, RebalanceConfig(targets={"math": 1.0}, max_samples=4))
    assert full.chosen["difficulty"].to_list()[-2:] == [0.0, 0.0]  # nulls filled as 0


def test_max_per_question_is_respected():
    frame = kept({"math": (5, 4), "code": (5, 4)})
    for cap in (1, 2, 3):
        sel = rebalance(frame, RebalanceConfig(targets={"math": 0.5, "code": 0.5}, max_samples=100,
                                               max_per_question=cap))
        per_question = Counter(question_of(s) for s in sel.chosen["sample_id"].to_list())
        assert max(per_question.values()) == cap
        assert sel.chosen.height == 10 * cap


def test_domains_outside_the_targets_are_never_selected():
    frame = kept({"math": (5, 1), "other": (50, 1)})
    sel = rebalance(frame, RebalanceConfig(targets={"math": 1.0}, max_samples=100))
    assert counts(sel) == {"math": 5}


def test_rebalance_is_deterministic_for_a_seed():
    # Equal difficulty everywhere: only the seeded tiebreak decides.
    frame = kept({"math": (40, 3), "code": (40, 3)}, difficulty=lambda d, i: 0.5)
    cfg = RebalanceConfig(targets={"math": 0.5, "code": 0.5}, max_samples=20, seed=7)
    a = rebalance(frame, cfg).chosen
    assert a.equals(rebalance(frame, cfg).chosen)
    assert a.equals(rebalance(frame.sample(fraction=1.0, shuffle=True, seed=1), cfg).chosen)
    b = rebalance(frame, cfg.model_copy(update={"seed": 8})).chosen
    assert set(a["sample_id"]) != set(b["sample_id"])
    assert counts(rebalance(frame, cfg.model_copy(update={"seed": 8}))) == {"math": 10, "code": 10}


def test_best_effort_reports_shortfalls_with_estimates():
    frame = kept({"math": (10, 3), "code": (3, 2), "science": (10, 2)})  # no logic kept at all
    tried = {"math": 10, "code": 3, "science": 10, "logic": 5}
    sel = rebalance(frame, RebalanceConfig(targets=TARGETS, max_samples=40, max_per_question=2), tried)
    assert counts(sel) == {"math": 16, "code": 6, "science": 8}
    by_domain = {row.domain: row for row in sel.shortfall}
    assert set(by_domain) == {"code", "logic"}
    assert by_domain["code"] == ShortfallRow(domain="code", target_fraction=0.2, wanted=8, selected=6, missing=2,
                                             questions_to_synthesize=1)  # 6 kept from 3 questions: 2 per question
    assert by_domain["logic"] == ShortfallRow(domain="logic", target_fraction=0.2, wanted=8, selected=0, missing=8,
                                              questions_to_synthesize=None)  # keep rate unknown (0 kept)


def test_shortfall_estimate_rounds_up_and_needs_questions_tried():
    frame = kept({"math": (100, 1), "code": (4, 1)})
    cfg = RebalanceConfig(targets={"math": 0.5, "code": 0.5}, max_samples=100)
    # code: 4 kept of 10 questions tried (0.4 per question), 46 missing -> ceil(46 / 0.4) = 115
    [row] = rebalance(frame, cfg, {"math": 100, "code": 10}).shortfall
    assert (row.domain, row.wanted, row.selected, row.missing, row.questions_to_synthesize) == ("code", 50, 4, 46, 115)
    [row] = rebalance(frame, cfg, None).shortfall
    assert row.questions_to_synthesize is None


# --- rebalance: preference orders and mixes inside a domain ---------------------------------------


def test_power_law_prefers_hard_questions_but_lets_easier_ones_in():
    frame = kept({"math": (100, 1)})  # difficulty 0.00 .. 0.99
    cfg = RebalanceConfig(targets={"math": 1.0}, max_samples=20, prefer="power_law", power_law_alpha=1.0)
    chosen = rebalance(frame, cfg).chosen["difficulty"].to_list()
    assert len(chosen) == 20
    assert sum(d >= 0.80 for d in chosen) >= 8  # the top fifth holds many of the picks
    assert min(chosen) < 0.80  # but not only the hardest
    assert rebalance(frame, cfg).chosen.equals(rebalance(frame.reverse(), cfg).chosen)
    steep = rebalance(frame, cfg.model_copy(update={"power_law_alpha": 3.0})).chosen["difficulty"]
    assert steep.mean() > pl.Series(chosen).mean()  # a steeper law leans harder
    assert rebalance(frame, cfg).chosen["reason"][0].startswith("math: rank 1 in a power-law draw, difficulty")


def test_pass_rate_band_takes_questions_in_the_band_first():
    frame = kept({"math": (100, 1)})
    cfg = RebalanceConfig(targets={"math": 1.0}, max_samples=30, prefer="pass_rate_band", pass_rate_band=(0.1, 0.6))
    chosen = rebalance(frame, cfg).chosen["difficulty"].to_list()
    # pass rate 0.1-0.6 is difficulty 0.4-0.9: 51 questions there, 30 taken, all inside.
    assert all(0.4 <= d <= 0.9 for d in chosen) and len(chosen) == 30
    wide = rebalance(frame, cfg.model_copy(update={"max_samples": 60})).chosen["difficulty"].to_list()
    outside = [d for d in wide if not 0.4 <= d <= 0.9]
    assert len(outside) == 9 and all(d in (0.35, 0.36, 0.37, 0.38, 0.39, 0.91, 0.92, 0.93, 0.94, 0.95) for d in outside)


def test_difficulty_band_mix_splits_the_domain_quota():
    frame = kept({"math": (100, 1)})  # 34 easy (< 1/3), 33 medium, 33 hard
    cfg = RebalanceConfig(targets={"math": 1.0}, max_samples=20,
                          difficulty_targets={"easy": 0.2, "medium": 0.3, "hard": 0.5})
    sel = rebalance(frame, cfg).chosen
    bands = Counter("easy" if d < 1 / 3 else "medium" if d < 2 / 3 else "hard" for d in sel["difficulty"])
    assert bands == {"easy": 4, "medium": 6, "hard": 10}
    assert min(sel.filter(pl.col("difficulty") >= 2 / 3)["difficulty"]) >= 0.90  # hardest of each band
    assert "band hard, in mix" in sel["reason"][0]


def test_a_short_band_falls_back_to_the_next_preferred_samples():
    frame = kept({"math": (40, 1)}, difficulty=lambda d, i: 0.9 if i < 3 else 0.1)  # 3 hard, 37 easy
    cfg = RebalanceConfig(targets={"math": 1.0}, max_samples=10, difficulty_targets={"easy": 0.5, "hard": 0.5})
    sel = rebalance(frame, cfg).chosen
    assert sel.height == 10
    assert (sel["difficulty"] == 0.9).sum() == 3
    assert sum("mix part short" in r for r in sel["reason"]) == 2


def test_style_mix_inside_a_domain():
    frame = kept({"math": (40, 1)}).with_columns(
        requested_format=pl.Series(["boxed" if i % 4 == 0 else "prose" for i in range(40)]))
    cfg = RebalanceConfig(targets={"math": 1.0}, max_samples=10, style_targets={"boxed": 0.5, "prose": 0.5})
    sel = rebalance(frame, cfg).chosen.join(frame.select("sample_id", "requested_format"), on="sample_id")
    assert Counter(sel["requested_format"]) == {"boxed": 5, "prose": 5}
    plain = rebalance(frame, cfg.model_copy(update={"style_targets": None})).chosen.join(
        frame.select("sample_id", "requested_format"), on="sample_id")
    assert Counter(plain["requested_format"]) == {"boxed": 2, "prose": 8}  # hardest first, no mix


def test_mix_targets_must_sum_to_one():
    with pytest.raises(ValueError, match="difficulty_targets must be non-negative and sum to 1"):
        RebalanceConfig(difficulty_targets={"easy": 0.5, "hard": 0.6})
    with pytest.raises(ValueError, match="pass_rate_band"):
        RebalanceConfig(pass_rate_band=(0.7, 0.2))


# --- rebalance: strict ------------------------------------------------------------------------


def test_strict_shrinks_the_total_to_meet_exact_shares():
    frame = kept({"math": (50, 1), "code": (3, 1), "science": (50, 1), "logic": (50, 1)})
    sel = rebalance(frame, RebalanceConfig(targets=TARGETS, max_samples=1000, mode="strict"))
    # code has 3 for a 0.2 share: the total shrinks to 15.
    assert counts(sel) == {"math": 6, "code": 3, "science": 3, "logic": 3}
    # The shortfall says why: the mix at the best-effort size (153) wants 61 math and 30 code.
    assert {(r.domain, r.wanted, r.selected, r.missing) for r in sel.shortfall} == {
        ("math", 61, 6, 11), ("code", 30, 3, 27)}
    best = rebalance(frame, RebalanceConfig(targets=TARGETS, max_samples=1000))
    assert best.chosen.height > sel.chosen.height


def test_strict_respects_max_samples_and_zero_targets():
    frame = kept({"math": (50, 1), "code": (50, 1), "logic": (50, 1)})
    targets = {"math": 0.5, "code": 0.5, "science": 0.0, "logic": 0.0}
    sel = rebalance(frame, RebalanceConfig(targets=targets, max_samples=10, mode="strict"))
    assert counts(sel) == {"math": 5, "code": 5}


def test_strict_with_an_empty_domain_selects_nothing():
    frame = kept({"math": (50, 1), "code": (50, 1)})
    sel = rebalance(frame, RebalanceConfig(targets={"math": 0.5, "code": 0.3, "logic": 0.2}, mode="strict"))
    assert sel.chosen.height == 0
    [row] = sel.shortfall
    assert (row.domain, row.wanted, row.selected, row.missing) == ("logic", 20, 0, 20)


# --- quotas ---------------------------------------------------------------------------------


@pytest.mark.parametrize("total", [0, 1, 7, 10, 13, 99, 1000])
def test_quotas_sum_to_the_total(total):
    plenty = {d: 10**6 for d in TARGETS}
    for cap in (False, True):
        quota = _quotas(TARGETS, total, plenty, cap)
        assert sum(quota.values()) == total
        for d, f in TARGETS.items():
            assert abs(quota[d] - f * total) < 1


def test_rebalance_selected_plus_missing_is_the_aim_in_best_effort():
    frame = kept({"math": (9, 1), "code": (7, 1), "science": (5, 1), "logic": (3, 1)})
    sel = rebalance(frame, RebalanceConfig(targets=TARGETS, max_samples=13))
    assert sel.chosen.height + sum(r.missing for r in sel.shortfall) == 13
    strict = rebalance(frame, RebalanceConfig(targets=TARGETS, max_samples=13, mode="strict"))
    total = strict.chosen.height
    for d, f in TARGETS.items():
        assert abs(counts(strict).get(d, 0) - f * total) < 1


def test_capped_quotas_give_leftover_units_only_to_domains_with_samples():
    fracs = {"math": 0.25, "code": 0.25, "science": 0.25, "logic": 0.25}
    # Floors are 2 each; both leftover units would go to code/science/logic by name order, but
    # they have nothing to give, so math takes one and the other stays unassigned (a shortfall).
    quota = _quotas(fracs, 10, {"math": 100, "code": 0, "science": 0, "logic": 0}, cap=True)
    assert quota == {"math": 3, "code": 2, "science": 2, "logic": 2}
    uncapped = _quotas(fracs, 10, {"math": 100, "code": 0, "science": 0, "logic": 0}, cap=False)
    assert sum(uncapped.values()) == 10


def test_best_effort_keeps_a_lone_sample_that_rounding_would_drop():
    sel = rebalance(kept({"code": (1, 1)}), RebalanceConfig(targets=TARGETS))
    assert counts(sel) == {"code": 1}

# --- export -----------------------------------------------------------------------------------

COLUMNS = ["id", "question_id", "domain", "subdomain", "source", "requested_format", "difficulty", "model",
           "messages", "reasoning", "answer", "reasoning_container"]


def export_rows(n_per_domain: int = 5, domains=("math", "code")) -> pl.DataFrame:
    rows = []
    for d in domains:
        for i in range(n_per_domain):
            prompt = [{"role": "system", "content": "You are a careful reasoner."},
                      {"role": "user", "content": f"{d} question {i}?"}]
            rows.append({
                "sample_id": f"{d}-{i:02d}", "question_id": f"q-{d}-{i}", "domain": d,
                "subdomain": "algebra" if d == "math" else None, "source": f"src-{d}",
                "requested_format": "prose" if i % 2 else "boxed", "difficulty": i / 10, "model": "test-model",
                "messages": json.dumps(prompt), "raw_text": f"<think>\nthinking {d} {i}\n</think>\n\nanswer {i}",
                "reasoning": f"thinking {d} {i}", "answer": f"answer {i}",
                "reasoning_container": "reasoning_field" if i == 1 else "think_tags",
            })
    # Deliberately unsorted input: the export sorts.
    return pl.DataFrame(rows[::-1])


def _write(tmp_path: Path, rows: pl.DataFrame, shard_rows: int = 3, export_id: str = "export-1",
           shortfall=None) -> tuple[Path, ShardManifest]:
    manifest = write_shards(chat_records(rows), tmp_path, export_id, "run-1", "cfghash", shard_rows,
                            shortfall or [])
    return tmp_path / export_id, manifest


def test_chat_records_shape():
    table = chat_records(export_rows(2))
    assert table.schema == SHARD_SCHEMA
    records = table.to_pylist()
    assert [r["id"] for r in records] == ["code-00", "code-01", "math-00", "math-01"]
    first, second = records[0], records[1]
    assert first["messages"] == [  # the prompt as generated, its (perturbed) system message included
        {"role": "system", "content": "You are a careful reasoner.", "reasoning_content": None},
        {"role": "user", "content": "code question 0?", "reasoning_content": None},
        {"role": "assistant", "content": "<think>\nthinking code 0\n</think>\n\nanswer 0", "reasoning_content": None},
    ]
    assert (first["reasoning"], first["answer"], first["subdomain"]) == ("thinking code 0", "answer 0", None)
    # A reasoning_field sample carries its reasoning beside the answer, not in it.
    assert second["messages"][-1] == {"role": "assistant", "content": "answer 1", "reasoning_content": "thinking code 1"}
    assert (first["reasoning_container"], second["reasoning_container"]) == ("think_tags", "reasoning_field")


def test_write_shards_files_manifest_and_counts(tmp_path: Path):
    shortfall = [ShortfallRow(domain="logic", target_fraction=0.2, wanted=2, selected=0, missing=2,
                              questions_to_synthesize=None)]
    folder, manifest = _write(tmp_path, export_rows(5), shard_rows=3, shortfall=shortfall)
    assert manifest.total_rows == 10
    assert manifest.counts_by_domain == {"code": 5, "math": 5}
    assert manifest.counts_by_format == {"boxed": 6, "prose": 4}
    assert manifest.columns == COLUMNS
    assert manifest.shortfall == shortfall
    assert [s.file for s in manifest.shards] == [f"data/train-{i:05d}-of-00004.parquet" for i in range(4)]
    assert [s.rows for s in manifest.shards] == [3, 3, 3, 1]
    for shard in manifest.shards:
        data = (folder / shard.file).read_bytes()
        assert shard.bytes == len(data)
        assert shard.sha256 == hashlib.sha256(data).hexdigest()
        assert pq.ParquetFile(folder / shard.file).metadata.num_rows == shard.rows
    on_disk = ShardManifest.model_validate_json((folder / "manifest.json").read_text())
    assert on_disk == manifest
    assert sorted(p.name for p in (folder / "data").iterdir()) == [s.file.split("/")[1] for s in manifest.shards]


@pytest.mark.parametrize(("n_rows", "shard_rows", "expected"), [(10, 5, [5, 5]), (10, 100, [10]), (10, 1, [1] * 10),
                                                                 (7, 2, [2, 2, 2, 1])])
def test_shard_rows_splits_into_files(tmp_path: Path, n_rows, shard_rows, expected):
    rows = export_rows(n_rows, domains=("math",))
    folder, manifest = _write(tmp_path, rows, shard_rows=shard_rows)
    assert [s.rows for s in manifest.shards] == expected
    assert len(list((folder / "data").glob("*.parquet"))) == len(expected)


def test_shards_load_with_hf_datasets(tmp_path: Path):
    import datasets

    folder, manifest = _write(tmp_path / "out", export_rows(5), shard_rows=4)
    files = [str(folder / s.file) for s in manifest.shards]
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf_cache"))
    assert ds.num_rows == 10
    assert ds.column_names == COLUMNS
    assert ds["id"] == [f"code-{i:02d}" for i in range(5)] + [f"math-{i:02d}" for i in range(5)]
    for row in ds:
        messages = row["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant"]
        assert all(set(m) == {"role", "content", "reasoning_content"} for m in messages)
        assert messages[-1]["content"].endswith(row["answer"])
        if row["reasoning_container"] == "think_tags":
            assert messages[-1]["content"].startswith("<think>\n" + row["reasoning"])
        else:
            assert messages[-1]["reasoning_content"] == row["reasoning"] and "<think>" not in messages[-1]["content"]


def test_same_input_gives_byte_identical_shards(tmp_path: Path):
    rows = export_rows(5)
    a_dir, a = _write(tmp_path / "a", rows, shard_rows=4)
    b_dir, b = _write(tmp_path / "b", rows.sample(fraction=1.0, shuffle=True, seed=3), shard_rows=4)
    assert [s.sha256 for s in a.shards] == [s.sha256 for s in b.shards]
    for shard in a.shards:
        assert (a_dir / shard.file).read_bytes() == (b_dir / shard.file).read_bytes()


def test_empty_selection_writes_a_manifest_and_no_data_file(tmp_path: Path):
    # A 0-row Parquet file would make datasets.load_dataset fail; the manifest says 0 rows.
    folder, manifest = _write(tmp_path, export_rows(1).head(0))
    assert manifest.total_rows == 0 and manifest.shards == []
    assert manifest.counts_by_domain == {} and manifest.counts_by_format == {}
    assert manifest.columns == COLUMNS
    assert not list((folder / "data").iterdir())
    assert json.loads((folder / "manifest.json").read_text())["total_rows"] == 0


def test_export_is_atomic_and_replaces_a_previous_export(tmp_path: Path):
    folder, _ = _write(tmp_path, export_rows(5), shard_rows=2)  # 5 files
    assert len(list((folder / "data").iterdir())) == 5
    (tmp_path / ".export-1.partial").mkdir()  # debris of a killed export
    (tmp_path / ".export-1.partial" / "junk").write_text("x")
    folder, manifest = _write(tmp_path, export_rows(5), shard_rows=20)  # now 1 file
    assert [p.name for p in tmp_path.iterdir()] == ["export-1"]
    assert not list(tmp_path.glob("*.partial"))
    assert [p.name for p in (folder / "data").iterdir()] == ["train-00000-of-00001.parquet"]
    assert json.loads((folder / "manifest.json").read_text())["total_rows"] == manifest.total_rows == 10


def test_pass_rate_band_reads_pass_rates_when_difficulty_is_a_combined_rank():
    # difficulty (a combined rank) says the opposite of the pass rates: the band follows pass rates.
    frame = kept({"math": (10, 1)}).with_columns(pass_difficulty=pl.Series([0.0] * 5 + [0.7] * 5),
                                                 difficulty=pl.Series([0.9] * 5 + [0.1] * 5))
    cfg = RebalanceConfig(targets={"math": 1.0}, max_samples=5, prefer="pass_rate_band")
    assert sorted(rebalance(frame, cfg).chosen["sample_id"]) == [f"math-q{i:03d}-s0" for i in range(5, 10)]
