"""`curate export`: an export's shard set in the Hugging Face ecosystem (pipeline/export/hf_dataset.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from curate.loop_cli import _existing, _fail, guard

console = Console(stderr=True, soft_wrap=True)


@guard
def export(
    db: Path = typer.Option(Path("curate.duckdb"), "--db", help="DuckDB file."),
    export_id: Optional[str] = typer.Option(None, "--export", help="The export to convert (default: the newest)."),
    hf_dataset: Optional[Path] = typer.Option(None, "--hf-dataset", help="Write a datasets.DatasetDict folder here (save_to_disk), with the dataset card."),
    push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", help="Push the DatasetDict to this Hub dataset repo (USER/NAME) with datasets' push_to_hub, then the card."),
    private: bool = typer.Option(False, "--private", help="With --push-to-hub: create the repo private."),
) -> None:
    """An exported shard set as a Hugging Face DatasetDict: a folder, or a Hub dataset repo.

    The folder (--hf-dataset) opens with datasets.load_from_disk and holds the dataset card;
    --push-to-hub uses datasets' own push. The shards are checked against their manifest first."""
    from pipeline.export.hf_dataset import find_export, push_dataset_dict, save_dataset_dict
    from pipeline.store import Store

    if not hf_dataset and not push_to_hub:
        _fail("give --hf-dataset DIR and/or --push-to-hub USER/NAME")
    if hf_dataset and hf_dataset.exists() and any(hf_dataset.iterdir()):
        _fail(f"--hf-dataset {hf_dataset}: the folder exists and is not empty; give a new folder")
    with Store(_existing(db), read_only=True) as store:
        manifest, folder = find_export(store, export_id)
    if hf_dataset:
        save_dataset_dict(manifest, folder, hf_dataset)
        console.print(f"{manifest.export_id}: {manifest.total_rows} rows -> {hf_dataset} (DatasetDict, split train; "
                      f'datasets.load_from_disk("{hf_dataset}"))', highlight=False, markup=False)
    if push_to_hub:
        push_dataset_dict(manifest, folder, push_to_hub, private=private)
        console.print(f"{manifest.export_id}: pushed to https://huggingface.co/datasets/{push_to_hub}",
                      highlight=False, markup=False)
