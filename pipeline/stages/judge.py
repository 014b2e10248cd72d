"""Judge stage: LLM judge rules, in configured order, on samples that passed every cheap rule.

Judging is the expensive step, so it runs only on samples no earlier verdict has rejected
(a cascade), and only where this rule at this version has no verdict yet (so adding a rule
and re-running is a backfill that judges exactly what is missing).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from judges.run import applies, judge_samples
from pipeline.progress import NoProgress, Progress
from pipeline.stages.verdicts import unjudged, verdict_frame
from pipeline.store import Store
from schemas.chat import ChatBackend
from schemas.judge_rule import JudgeRule

# Undecided so far: no failed latest verdict from any earlier rule.
_SURVIVORS = "NOT EXISTS (SELECT 1 FROM latest_verdicts lv WHERE lv.sample_id = x.sample_id AND NOT lv.passed)"


@dataclass
class JudgeReport:
    rule: str
    version: int
    judged: int
    kept: int
    errors: int


def run_judge(store: Store, rule: JudgeRule, engine: ChatBackend, run_id: str, batch_size: int = 64,
              max_retries: int = 2, only_survivors: bool = True, progress: Progress | None = None) -> JudgeReport:
    progress = progress or NoProgress()
    pending = unjudged(store, rule.name, rule.version, where=_SURVIVORS if only_survivors else "TRUE")
    rows = [r for r in pending.to_dicts() if applies(rule, r)]
    progress.start(f"judge: {rule.name} v{rule.version}", len(rows))
    judged = kept = errors = 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        results = judge_samples(rule, batch, engine, max_retries=max_retries, on_progress=progress.advance)
        frame = pl.DataFrame(
            {"passed": [r["passed"] for r in results], "score": [r["score"] for r in results],
             "reason": [r["reason"] for r in results]},
            schema={"passed": pl.Boolean, "score": pl.Float64, "reason": pl.String},
        )
        store.insert("verdicts", verdict_frame([r["sample_id"] for r in batch], frame, stage="judge",
                                               rule=rule.name, version=rule.version, run_id=run_id,
                                               details=[r["details"] for r in results]))
        judged += len(batch)
        kept += int(frame["passed"].sum())
        errors += sum(1 for r in results if r["score"] is None)
    progress.done()
    return JudgeReport(rule.name, rule.version, judged, kept, errors)
