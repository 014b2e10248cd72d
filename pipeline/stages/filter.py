"""Rule-filter stage: every cheap rule on every sample that lacks its verdict.

All cheap rules run on all samples (not only on survivors) so a sample's record says every
reason it fails, and a new rule's effect can be read in SQL before it is enforced.
"""

from __future__ import annotations

from dataclasses import dataclass

from filters.base import SampleFilter
from pipeline.progress import NoProgress, Progress
from pipeline.stages.verdicts import unjudged, verdict_frame
from pipeline.store import Store

_CHUNK = 5000  # samples per read-check-write round: memory stays flat, writes stay bulk


@dataclass
class RuleCount:
    rule: str
    checked: int
    failed: int


def run_filters(store: Store, filters: list[SampleFilter], run_id: str, stage: str = "filter",
                progress: Progress | None = None) -> list[RuleCount]:
    progress = progress or NoProgress()
    counts = []
    for f in filters:
        checked = failed = 0
        progress.start(f"{stage}: {f.name}", 0)
        while True:
            batch = unjudged(store, f.name, f.version, limit=_CHUNK)
            if batch.is_empty():
                break
            results = f.check_batch(batch)
            store.insert("verdicts", verdict_frame(batch["sample_id"].to_list(), results, stage=stage,
                                                   rule=f.name, version=f.version, run_id=run_id))
            checked += batch.height
            failed += int((~results["passed"]).sum())
            progress.advance(batch.height)
        progress.done()
        counts.append(RuleCount(f.name, checked, failed))
    return counts
