"""The dataset card (README.md) written beside every export: what is in it and how it was made."""

from __future__ import annotations

from schemas.shard import ShardManifest


def _table(title: str, counts: dict[str, int], total: int) -> str:
    if not counts:
        return ""
    rows = "\n".join(f"| {k} | {v} | {v / total:.1%} |" for k, v in counts.items())
    return f"\n### {title}\n\n| {title.lower()} | rows | share |\n|---|---|---|\n{rows}\n"


def front_matter(m: ShardManifest) -> str:
    """The card's YAML header: where the Hub's viewer and `load_dataset` find the rows (data/*)."""
    return f"""---
configs:
- config_name: default
  data_files: "data/*.{m.file_format}"
---
"""


def shard_set_loader(m: ShardManifest) -> str:
    loader = "parquet" if m.file_format == "parquet" else "json"
    return f'''import datasets
ds = datasets.load_dataset("{loader}", data_dir="<this folder>/data", split="train")'''


def dataset_card(m: ShardManifest, loader: str | None = None, header: bool = True) -> str:
    """The card of an export: its YAML header (header=False: none) and the body, whose Python
    snippet is `loader` (default: load_dataset over the shard set's data/ folder)."""
    total = max(m.total_rows, 1)
    loader = loader or shard_set_loader(m)
    target = m.target or {}
    rejected = "".join(f"\n- {reason}: {n}" for reason, n in m.rejected.items()) or " none"
    shortfall = "".join(f"\n- {s.domain}: {s.missing} more kept samples wanted" for s in m.shortfall) or " none"
    return (front_matter(m) if header else "") + f"""# {m.export_id}

Chain-of-thought training records exported by `curate` (run {m.run_id}; samples from runs
{", ".join(m.run_ids) or "-"}), config hash `{m.config_hash}`. {m.total_rows} rows in {len(m.shards)} shard(s).

Each row: `messages` (system, user, assistant; the assistant's reasoning in `<think>` tags or in
`reasoning_content`, see `reasoning_container`), `reasoning`, `answer`, `domain`, `subdomain`,
`source`, `requested_format`, `difficulty` (0 easy .. 1 hard), `model`.

Checked against the chat template of `{target.get("tokenizer", "-")}` (max_seq_len
{target.get("max_seq_len", "-")}): special tokens, intact reasoning, length. Left out:{rejected}

Shortfall against the target domain mix:{shortfall}

```python
{loader}
```

The question pools keep their own licences (see the `data/` folder of curate for each source).
{_table("Domain", m.counts_by_domain, total)}{_table("Style", m.counts_by_format, total)}{_table("Difficulty band", m.counts_by_difficulty_band, total)}{_table("Source", m.counts_by_source, total)}"""
