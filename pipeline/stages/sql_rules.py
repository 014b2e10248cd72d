"""SQL-rules stage: every enabled SQL rule (`curate rules enable`) over the samples without its
verdict under the rule's current hash. After the judges, so a clause can read judge scores.

The clause was checked when the rule was enabled (one expression, the store's tables only, no
table functions), so it runs on the pipeline's own connection here."""

from __future__ import annotations

from pipeline.misalignment import sql_rules
from pipeline.misalignment.enable import backfill_sql, enabled_sql_rules
from pipeline.stage import StageContext, StageReport


def run(ctx: StageContext) -> StageReport:
    counts, notes = {}, []
    for rule in enabled_sql_rules(ctx.store):
        if errors := sql_rules.clause_errors(rule.where):
            notes.append(f"[error] SQL rule {rule.name} not applied: {'; '.join(errors)}")
            continue
        hits = set(ctx.store.frame(sql_rules.query(rule.where))["sample_id"].to_list())
        written = backfill_sql(ctx.store, rule, hits, ctx.run.run_id)
        counts[rule.name] = {"checked": written, "matching": len(hits)}
    return StageReport(counts, notes)
