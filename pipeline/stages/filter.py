"""Rule-filter stage: every cheap rule on every sample that lacks its verdict, then the check of
generated answers against the benchmarks (rule decontam_answer, pass "decontam").

All cheap rules run on all samples (not only on survivors) so a sample's record says every
reason it fails, and a new rule's effect can be read in SQL before it is enforced. The loop,
resume and config hashes are pipeline/verdict_loop.py's, shared with the verify stage."""

from __future__ import annotations

from pipeline.stage import StageContext, StageReport


def run(ctx: StageContext) -> StageReport:
    counts = ctx.verdict_pass("filter") + ctx.verdict_pass("decontam")
    return StageReport({c.rule: {"checked": c.checked, "failed": c.failed} for c in counts})
