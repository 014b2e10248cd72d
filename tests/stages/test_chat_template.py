"""Chat-template checks (pipeline/export/chat_template.py) with the real SmolLM2 tokenizer, and the
export that uses them (pipeline/stages/export.py) on a real DuckDB file."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import polars as pl
import pytest

from pipeline.export.chat_template import TargetTemplate
from pipeline.stages.export import select_and_export
from pipeline.store import Store, now
from schemas.config import CurateConfig
from tests.stages.test_store import question_frame, sample_frame, verdicts

SYSTEM = {"role": "system", "content": "You are a careful reasoner.", "reasoning_content": None}
USER = {"role": "user", "content": "What is 2 + 2?", "reasoning_content": None}


def record(content: str, reasoning: str | None = None) -> list[dict]:
    return [SYSTEM, USER, {"role": "assistant", "content": content, "reasoning_content": reasoning}]


@pytest.fixture(scope="module")
def template() -> TargetTemplate:
    return TargetTemplate("smollm2-135m-instruct", max_seq_len=4096)


def test_good_records_pass_and_are_counted_in_tokens(template):
    tags, field = template.check_many([record("<think>\n2 and 2 make 4.\n</think>\n\n4"),
                                       record("4", reasoning="2 and 2 make 4.")])
    assert tags.ok and field.ok and tags.reason is None
    assert 20 < tags.tokens < 60 and abs(tags.tokens - field.tokens) <= 2  # same text either way
    # SmolLM2's template has no reasoning_content: the reasoning is folded back into <think> tags.
    assert "<think>\n2 and 2 make 4.\n</think>\n\n4<|im_end|>" in template.render(record("4", reasoning="2 and 2 make 4."))


@pytest.mark.parametrize(("messages", "reason"), [
    (record("<think>\nok\n</think>\n\n4<|im_end|>"), "special token <|im_end|> in assistant content"),
    (record("4", reasoning="thinking <|endoftext|>"), "special token <|endoftext|> in assistant reasoning_content"),
    ([SYSTEM, USER | {"content": "Q<|im_start|>system"}, record("<think>a</think>4")[-1]],
     "special token <|im_start|> in user content"),
    (record("4"), "think tags not intact"),
    (record("<think>\na\n</think>\n<think>\nb\n</think>\n4"), "think tags not intact"),
    (record("<think>\nnever closed 4"), "think tags not intact"),
    (record("Answer first <think>\na\n</think>"), "think tags not intact"),
    (record("<think>a</think>4", reasoning="r"), "think tag in the content of a reasoning_content record"),
    (record("4", reasoning="  "), "empty reasoning_content"),
])
def test_bad_records_fail_with_the_reason(template, messages, reason):
    [result] = template.check_many([messages])
    assert not result.ok and result.reason.startswith(reason)


def test_records_longer_than_max_seq_len_fail():
    short = TargetTemplate("smollm2-135m-instruct", max_seq_len=60)
    ok, long = short.check_many([record("<think>\nfine\n</think>\n\n4"),
                                 record("<think>\n" + "step " * 50 + "\n</think>\n\n4")])
    assert ok.ok
    assert not long.ok and long.reason == f"too long: {long.tokens} tokens > max_seq_len 60"


# --- the export with the checks -----------------------------------------------------------------


def _store_with_samples(path: Path) -> Store:
    store = Store(path)
    store.insert("questions", question_frame(*[(f"q{i}", "math") for i in range(6)]))
    specs = [(f"s{i}", f"q{i}") for i in range(6)]
    long_reasoning = "we add the numbers carefully. " * 80
    samples = sample_frame(*specs).with_columns(
        raw_text=pl.Series([f"<think>\n{long_reasoning if i == 5 else 'r'}\n</think>\n\n4" for i in range(6)]),
        reasoning=pl.Series([long_reasoning if i == 5 else "r" for i in range(6)]),
        answer=pl.Series(["4<|im_end|>" if i == 4 else "4" for i in range(6)]),
        reasoning_container=pl.Series(["reasoning_field" if i == 1 else "think_tags" for i in range(6)]),
        messages=pl.Series([json.dumps([{"role": "user", "content": f"Question {i}?"}]) for i in range(6)]))
    # s4 leaks a special token into its answer (and raw_text below); s5 is too long for 256 tokens.
    samples = samples.with_columns(raw_text=pl.when(pl.col("sample_id") == "s4")
                                   .then(pl.lit("<think>\nr\n</think>\n\n4<|im_end|>")).otherwise(pl.col("raw_text")))
    store.insert("samples", samples)
    store.insert("verdicts", verdicts([s for s, _ in specs], [True] * 6))
    store.replace("question_difficulty", pl.DataFrame(
        [{"question_id": f"q{i}", "method": "pass_rate", "version": 1, "score": 1.0 - i / 10, "n_samples": 2,
          "detail": "", "run_id": "run-0", "created_at": now()} for i in range(6)],
        schema_overrides={"version": pl.Int32, "n_samples": pl.Int32}))
    return store


@pytest.mark.parametrize("file_format", ["parquet", "jsonl"])
def test_export_leaves_out_rejected_records_and_refills_the_quota(tmp_path: Path, file_format):
    config = CurateConfig(rebalance={"targets": {"math": 1.0}, "max_samples": 3, "max_per_question": 1},
                          export={"max_seq_len": 256, "file_format": file_format})
    with _store_with_samples(tmp_path / "curate.duckdb") as store:
        manifest = select_and_export(store, config, "run-1", tmp_path / "out")
        rejects = dict(store.frame("SELECT sample_id, reason FROM export_rejects").rows())
        chosen = set(store.frame("SELECT sample_id FROM selections")["sample_id"])
    # Hardest first is s0, s1, s2 ... : none rejected there, so s4/s5 are never even checked.
    assert chosen == {"s0", "s1", "s2"} and rejects == {}
    config = config.model_copy(update={"rebalance": config.rebalance.model_copy(update={"max_samples": 6})})
    with _store_with_samples(tmp_path / "curate2.duckdb") as store:
        manifest = select_and_export(store, config, "run-2", tmp_path / "out")
        rejects = dict(store.frame("SELECT sample_id, reason FROM export_rejects").rows())
    assert set(rejects) == {"s4", "s5"}
    assert rejects["s4"] == "special token <|im_end|> in assistant content"
    assert rejects["s5"].startswith("too long: ") and rejects["s5"].endswith("> max_seq_len 256")
    assert manifest.total_rows == 4 and sum(manifest.rejected.values()) == 2
    # The synthesis model's own template by default (export.tokenizer: synthesis).
    assert manifest.target == {"tokenizer": "qwen2.5-coder-1.5b-instruct", "max_seq_len": 256, "reasoning": "per_sample"}
    assert manifest.run_ids == ["run-0"] and manifest.counts_by_difficulty_band == {"hard": 4}
    folder = tmp_path / "out" / "export-run-2"
    card = (folder / "README.md").read_text()
    assert "4 rows in 1 shard(s)" in card and "too long" in card and "| math | 4 | 100.0% |" in card
    ds = datasets.load_dataset("parquet" if file_format == "parquet" else "json", data_dir=str(folder / "data"),
                               split="train", cache_dir=str(tmp_path / "hf"))
    assert sorted(ds["id"]) == ["s0", "s1", "s2", "s3"]
    by_id = {r["id"]: r for r in ds}
    assert by_id["s1"]["messages"][-1]["reasoning_content"] == "r"  # its own container


def test_the_same_store_and_config_export_byte_identical_shards(tmp_path: Path):
    config = CurateConfig(rebalance={"targets": {"math": 1.0}, "max_per_question": 1},
                          export={"max_seq_len": 256, "shard_rows": 2})
    with _store_with_samples(tmp_path / "curate.duckdb") as store:
        a = select_and_export(store, config, "run-a", tmp_path / "a")
        b = select_and_export(store, config, "run-b", tmp_path / "b")
    assert len(a.shards) == 2 and [s.sha256 for s in a.shards] == [s.sha256 for s in b.shards]


def test_an_unchanged_selection_writes_no_new_shard_set(tmp_path: Path):
    config = CurateConfig(rebalance={"targets": {"math": 1.0}, "max_samples": 3, "max_per_question": 1},
                          export={"max_seq_len": 256})
    with _store_with_samples(tmp_path / "curate.duckdb") as store:
        first = select_and_export(store, config, "run-1", tmp_path / "out", skip_unchanged=True)
        assert first is not None and first.selection_digest
        manifest_file = json.loads((tmp_path / "out" / "export-run-1" / "manifest.json").read_text())
        assert manifest_file["selection_digest"] == first.selection_digest
        assert select_and_export(store, config, "run-2", tmp_path / "out", skip_unchanged=True) is None
        assert not (tmp_path / "out" / "export-run-2").exists()
        # A different selection (one more sample) is exported again.
        bigger = config.model_copy(update={"rebalance": config.rebalance.model_copy(update={"max_samples": 4})})
        third = select_and_export(store, bigger, "run-3", tmp_path / "out", skip_unchanged=True)
        assert third is not None and third.selection_digest != first.selection_digest
        # So are changed export settings with the same samples.
        jsonl = bigger.model_copy(update={"export": bigger.export.model_copy(update={"file_format": "jsonl"})})
        assert select_and_export(store, jsonl, "run-4", tmp_path / "out", skip_unchanged=True) is not None
        exports = store.frame("SELECT export_id FROM exports ORDER BY created_at")["export_id"].to_list()
    assert exports == ["export-run-1", "export-run-3", "export-run-4"]
