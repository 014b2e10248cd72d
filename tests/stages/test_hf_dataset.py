"""`curate export --hf-dataset`: an export's shard set as a DatasetDict folder that
datasets.load_from_disk reads back row for row, with the dataset card; shards that changed since
the export are refused. (--push-to-hub needs the network: documented, not run here.)"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate.cli import app
from tests.report.report_store import build

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("hf")
    db = build(tmp / "store.duckdb", tmp / "out")
    return db, tmp / "out" / "export-run-0"


def test_the_dataset_dict_loads_back_equal_to_the_shards(store, tmp_path):
    db, folder = store
    target = tmp_path / "hf"
    result = runner.invoke(app, ["export", "--db", str(db), "--hf-dataset", str(target)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((folder / "manifest.json").read_text())
    loaded = datasets.load_from_disk(str(target))
    assert isinstance(loaded, datasets.DatasetDict) and list(loaded) == ["train"]
    train = loaded["train"]
    assert train.num_rows == manifest["total_rows"] > 0 and train.column_names == manifest["columns"]
    shards = [pq.read_table(folder / s["file"]).to_pylist() for s in manifest["shards"]]
    assert train.to_list() == [row for shard in shards for row in shard]
    assert train[0]["messages"][-1]["role"] == "assistant"
    card = (target / "README.md").read_text()
    assert card.startswith("# export-run-0") and f'datasets.load_from_disk("{target}")' in card
    assert f"{manifest['total_rows']} rows" in card and "data_files" not in card


def test_a_changed_shard_or_unknown_export_is_refused(store, tmp_path):
    db, folder = store
    bad = runner.invoke(app, ["export", "--db", str(db), "--export", "nope", "--hf-dataset", str(tmp_path / "a")])
    assert bad.exit_code == 2 and "--export nope: no such export" in bad.output and "export-run-0" in bad.output
    none = runner.invoke(app, ["export", "--db", str(db)])
    assert none.exit_code == 2 and "--hf-dataset DIR and/or --push-to-hub" in none.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    full = runner.invoke(app, ["export", "--db", str(db), "--hf-dataset", str(tmp_path / "full")])
    assert full.exit_code == 2 and "not empty" in full.output
    shard = folder / json.loads((folder / "manifest.json").read_text())["shards"][0]["file"]
    original = shard.read_bytes()
    try:
        shard.write_bytes(original + b"\0")
        changed = runner.invoke(app, ["export", "--db", str(db), "--hf-dataset", str(tmp_path / "b")])
        assert changed.exit_code == 2 and f"{shard}: changed since the export" in changed.output
        assert not (tmp_path / "b").exists()
    finally:
        shard.write_bytes(original)
