"""An export's shard set as a Hugging Face `DatasetDict` (one split, train): saved with
`save_to_disk` beside its dataset card, or pushed with `push_to_hub`. The shards are checked
against their manifest's sha256 first, so what is converted is what the export wrote."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from pipeline.export.dataset_card import dataset_card
from pipeline.export.shards import SHARD_SCHEMA
from pipeline.store import Store
from schemas.shard import ShardManifest


class ExportNotFound(ValueError):
    """An export id the store does not hold, a folder that is gone, or shards that changed."""


def find_export(store: Store, export_id: str | None) -> tuple[ShardManifest, Path]:
    """(manifest, folder) of the export (default: the newest)."""
    where, params = ("WHERE export_id = ?", [export_id]) if export_id else ("", None)
    rows = store.frame(f"SELECT export_id, out_dir FROM exports {where} ORDER BY created_at DESC LIMIT 1", params)
    if rows.is_empty():
        known = store.frame("SELECT export_id FROM exports ORDER BY created_at DESC LIMIT 5")["export_id"].to_list()
        raise ExportNotFound(f"--export {export_id}: no such export in {store.path} (newest: {', '.join(known) or 'none'})"
                             if export_id else f"{store.path} holds no export yet (run `curate run` first)")
    export_id, out_dir = rows.row(0)
    # a relative out_dir is relative to where `curate run` ran: here, or (usually) beside the database
    tried = [Path(out_dir)] if Path(out_dir).is_absolute() else [Path(out_dir), store.path.parent / out_dir]
    folder = next((f for f in tried if (f / "manifest.json").exists()), None)
    if folder is None:
        raise ExportNotFound(f"export {export_id}: no manifest.json in {' or '.join(map(str, tried))} "
                             "(the shard set was moved or deleted?)")
    return ShardManifest(**json.loads((folder / "manifest.json").read_text())), folder


def read_shards(manifest: ShardManifest, folder: Path) -> pa.Table:
    """Every shard's rows in order, each file checked against the manifest's sha256."""
    tables = []
    for shard in manifest.shards:
        path = folder / shard.file
        data = path.read_bytes() if path.exists() else b""
        if hashlib.sha256(data).hexdigest() != shard.sha256:
            raise ExportNotFound(f"{path}: {'missing' if not path.exists() else 'changed since the export'} "
                                 f"(sha256 differs from {folder / 'manifest.json'})")
        if manifest.file_format == "jsonl":
            tables.append(pa_json.read_json(path, parse_options=pa_json.ParseOptions(explicit_schema=SHARD_SCHEMA)))
        else:
            tables.append(pq.read_table(path))
    table = pa.concat_tables(tables) if tables else SHARD_SCHEMA.empty_table()
    return table.select(SHARD_SCHEMA.names).cast(SHARD_SCHEMA)


def dataset_dict(manifest: ShardManifest, folder: Path):
    import datasets

    return datasets.DatasetDict({"train": datasets.Dataset(read_shards(manifest, folder))})


def save_dataset_dict(manifest: ShardManifest, folder: Path, target: Path) -> Path:
    """DatasetDict.save_to_disk(target) plus README.md, the export's card with a load_from_disk snippet."""
    dataset_dict(manifest, folder).save_to_disk(str(target))
    loader = f'import datasets\nds = datasets.load_from_disk("{target}")["train"]'
    # no YAML header: it points at data/*, which a save_to_disk folder does not have
    (target / "README.md").write_text(dataset_card(manifest, loader=loader, header=False))
    return target


def push_dataset_dict(manifest: ShardManifest, folder: Path, repo: str, private: bool = False) -> None:
    """datasets' own push (Parquet under data/ on the Hub, its README with dataset_info), then the
    export's card as the README body under the YAML the push wrote. Needs network and a token
    (`hf auth login` or HF_TOKEN)."""
    from huggingface_hub import DatasetCard

    dataset_dict(manifest, folder).push_to_hub(repo, private=private,
                                               commit_message=f"curate export {manifest.export_id}")
    pushed = DatasetCard.load(repo)
    loader = f'import datasets\nds = datasets.load_dataset("{repo}", split="train")'
    body = dataset_card(manifest, loader=loader, header=False)
    DatasetCard(f"---\n{pushed.data.to_yaml()}\n---\n{body}").push_to_hub(
        repo, commit_message=f"dataset card of {manifest.export_id}")
