"""Labels on traced candidates: dirty (the sample taught the bad behaviour) or clean. Labels are
rows (candidate_labels), never edited: relabelling adds a row and the newest counts
(current_labels). A user's label outranks a judge's pre-label of the same sample."""

from __future__ import annotations

import polars as pl

from pipeline.store import Store, now
from schemas import rows
from schemas.bad_case import LABELS

USER = "user"


def add_labels(store: Store, sample_ids: list[str], label: str, *, case_id: str | None = None,
               labeller: str = USER, note: str | None = None) -> int:
    """Label samples (by id or unique prefix); KeyError naming an unknown sample."""
    if label not in LABELS:
        raise ValueError(f"label must be one of {', '.join(LABELS)}, not {label!r}")
    full = sample_ids_of(store, sample_ids)
    store.insert("candidate_labels", pl.DataFrame(
        {"case_id": [case_id] * len(full), "sample_id": full, "label": [label] * len(full),
         "labeller": [labeller] * len(full), "note": [note] * len(full), "created_at": [now()] * len(full)},
        schema=rows.CANDIDATE_LABEL))
    return len(full)


def sample_ids_of(store: Store, prefixes: list[str]) -> list[str]:
    """Full sample ids from ids or unique prefixes; KeyError naming the first unknown one."""
    return [_sample_id(store, p) for p in prefixes]


def _sample_id(store: Store, prefix: str) -> str:
    found = store.frame("SELECT sample_id FROM samples WHERE starts_with(sample_id, ?) LIMIT 2", [prefix])
    if found.height != 1:
        raise KeyError(f"{'no sample' if found.is_empty() else 'more than one sample'} with id {prefix!r}")
    return found["sample_id"][0]


def label_per_sample(where: str = "TRUE") -> str:
    """SQL: the label that counts per sample (a user's over a judge's, then the newest), among
    the current labels matching `where`."""
    return f"""
SELECT sample_id, label FROM current_labels WHERE {where}
QUALIFY row_number() OVER (PARTITION BY sample_id ORDER BY (labeller = 'user') DESC, created_at DESC) = 1
"""


LABEL_PER_SAMPLE = label_per_sample()


def labelled(store: Store) -> pl.DataFrame:
    """sample_id, label: one label per labelled sample."""
    return store.frame(LABEL_PER_SAMPLE)
