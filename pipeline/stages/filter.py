"""Rule-filter stage: every cheap rule on every sample that lacks its verdict.

All cheap rules run on all samples (not only on survivors) so a sample's record says every
reason it fails, and a new rule's effect can be read in SQL before it is enforced.

One pass over the data: the samples missing any of the rules' verdicts are listed once, then
read in chunks; each chunk gets every missing verdict and is written in one transaction (a
killed run leaves whole chunks). Listing once keeps the cost linear in the number of samples
(re-querying "what is unjudged" per chunk grew quadratically: bench/scale.py).

"Missing" is per rule config hash (SampleFilter.config_hash: name, version, parameters): a
changed threshold recomputes that rule only; when the stage finishes, each rule's hash is
recorded (pipeline/stages/verdicts.py) and latest_verdicts shows the verdicts made under it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from filters.base import SampleFilter
from pipeline.progress import NoProgress, Progress
from pipeline.stages.verdicts import SAMPLE_VIEW, RuleConfig, record_configs, verdict_frame
from pipeline.store import Store

_CHUNK = 10_000  # samples per read-check-write round: memory stays flat, writes stay bulk


@dataclass
class RuleCount:
    rule: str
    checked: int
    failed: int


def rule_keys_frame(filters: list[SampleFilter]) -> pl.DataFrame:
    """(rule, config_hash) of each filter: what a sample's verdicts are checked against (here and
    by the Ray chunks, pipeline/scaleout/chunks.py)."""
    names = [f.name for f in filters]
    if len(set(names)) != len(names):
        raise ValueError(f"two rules share a name in one filter run: {sorted(n for n in names if names.count(n) > 1)}")
    return pl.DataFrame({"rule": names, "config_hash": [f.config_hash for f in filters]},
                        schema={"rule": pl.String, "config_hash": pl.String})


def run_filters(store: Store, filters: list[SampleFilter], run_id: str, stage: str = "filter",
                progress: Progress | None = None) -> list[RuleCount]:
    progress = progress or NoProgress()
    counts = {f.name: RuleCount(f.name, 0, 0) for f in filters}
    keys = rule_keys_frame(filters)
    todo = store.frame("""
        SELECT s.sample_id, coalesce(done.n, 0) AS n FROM samples s
        LEFT JOIN (SELECT v.sample_id, count(*) AS n FROM verdicts v JOIN rule_keys k USING (rule, config_hash)
                   GROUP BY v.sample_id) done USING (sample_id)
        WHERE coalesce(done.n, 0) < ? ORDER BY s.sample_id
    """, [len(filters)], rule_keys=keys)
    progress.start(f"{stage}: {len(filters)} rules", todo.height)
    for start in range(0, todo.height, _CHUNK):
        chunk = todo.slice(start, _CHUNK)
        batch = store.frame(f"SELECT x.* FROM ({SAMPLE_VIEW}) x JOIN chunk USING (sample_id) ORDER BY sample_id",
                            chunk=chunk.select("sample_id"))
        # Only samples with some of the verdicts already need a look at which (usually none do).
        partial = chunk.filter(pl.col("n") > 0).select("sample_id")
        have = store.frame("""SELECT v.sample_id, v.rule FROM verdicts v JOIN partial USING (sample_id)
                              JOIN rule_keys k USING (rule, config_hash)""", partial=partial, rule_keys=keys) \
            if partial.height else pl.DataFrame(schema={"sample_id": pl.String, "rule": pl.String})
        frames = []
        for f in filters:
            judged = have.filter(pl.col("rule") == f.name)["sample_id"]
            part = batch.filter(~pl.col("sample_id").is_in(judged.implode()))
            if part.is_empty():
                continue
            results = f.check_batch(part)
            frames.append(verdict_frame(part["sample_id"].to_list(), results, stage=stage, rule=f.name,
                                        version=f.version, run_id=run_id, config_hash=f.config_hash))
            counts[f.name].checked += part.height
            counts[f.name].failed += int((~results["passed"]).sum())
        if frames:
            store.insert("verdicts", pl.concat(frames))
        progress.advance(chunk.height)
    record_configs(store, [RuleConfig(f.name, stage, f.version, f.config_hash, f.params) for f in filters], run_id)
    progress.done()
    return list(counts.values())
