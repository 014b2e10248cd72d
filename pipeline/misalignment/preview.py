"""`curate rules preview RULE`: what a rule would remove, before it counts.

Its verdicts go to `preview_verdicts` (the verdicts' shape, read by nothing else), so
sample_status, kept_samples and exports are untouched until `curate rules enable`. A second
preview of a Python or judge rule with the same version and parameters reuses its stored preview
verdicts; a SQL rule is one query, re-read each time, and stores only its matches.

The report: hits and hit rate by domain, source, model and requested style; precision and
recall against the labelled candidates; how many bad cases it catches; 20 hits and 20 near
misses; overlap with the rules that count now and what it alone removes (samples and tokens);
and the next export's domain mix and difficulty with and without it (the rebalance rerun on
the kept samples; the chat-template checks of a real export are not rerun).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import polars as pl

from pipeline.misalignment import sql_rules
from pipeline.misalignment.labels import LABEL_PER_SAMPLE
from pipeline.misalignment.loop_rules import LoopRule
from pipeline.misalignment.preview_baseline import baseline, selection_figures
from pipeline.progress import NoProgress, Progress
from pipeline.store import Store, now
from pipeline.verdicts import SAMPLE_VIEW, verdict_frame

PREVIEW_RUN = "preview"
_CHUNK = 10_000
_SHOWN = 20


@dataclass
class PreviewReport:
    rule: str
    kind: str
    version: int
    config_hash: str
    evaluated: int
    hits: int
    hit_rate: float
    by: dict[str, list[dict]] = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    cases: dict = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)
    near_misses: list[dict] = field(default_factory=list)
    overlap: dict = field(default_factory=dict)
    export_shift: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def preview(db: str | Path, rule: LoopRule, config, *, limit: int | None = None,
            sample_ids: list[str] | None = None, engine=None, progress: Progress | None = None) -> PreviewReport:
    """Compute the preview verdicts still missing, then the report. A judge rule needs `engine`
    and judges `sample_ids` or the first `limit` samples it applies to (judge_preview.py)."""
    if sample_ids and rule.kind != "judge":
        raise ValueError(f"{rule.name} is a {rule.kind} rule: it previews over the store (or --limit), not named samples")
    if rule.kind == "judge":
        from pipeline.misalignment import judge_preview

        if engine is None:
            raise ValueError(f"{rule.name} is a judge rule: its preview needs an engine")
        rule = replace(rule, config_hash=judge_preview.preview_hash(rule.judge, engine))
    hits, near = sql_rules.matches(db, rule.sql, near_misses=_SHOWN) if rule.kind == "sql" else (None, {})
    with Store(db) as store:
        if rule.kind == "judge":
            judge_preview.judge_into_preview(store, rule.judge, engine, sample_ids=sample_ids, limit=limit,
                                             batch_size=config.judges.batch_size,
                                             max_retries=config.judges.max_parse_retries, progress=progress)
        else:
            _evaluate(store, rule, hits, limit, progress or NoProgress())
        return _report(store, rule, config, near)


def _evaluate(store: Store, rule: LoopRule, hits: pl.Series | None, limit: int | None, progress: Progress) -> None:
    # The first `limit` samples (id order), those of them not previewed yet under this hash.
    first = "SELECT sample_id FROM samples ORDER BY sample_id" + (f" LIMIT {int(limit)}" if limit else "")
    due = f"""SELECT sample_id FROM ({first}) s WHERE NOT EXISTS (
                  SELECT 1 FROM preview_verdicts p WHERE p.sample_id = s.sample_id
                  AND p.rule = $rule AND p.config_hash = $hash)
              ORDER BY sample_id"""
    if rule.kind == "sql":
        _evaluate_sql(store, rule, hits)
        return
    due_ids = store.frame(due, {"rule": rule.name, "hash": rule.config_hash})["sample_id"]
    progress.start(f"preview {rule.name}", len(due_ids))
    try:
        for start in range(0, len(due_ids), _CHUNK):
            ids = due_ids[start:start + _CHUNK]
            batch = store.frame(f"SELECT x.* FROM ({SAMPLE_VIEW}) x JOIN _ids USING (sample_id) ORDER BY sample_id",
                                _ids=ids.to_frame())
            store.replace("preview_verdicts", verdict_frame(
                batch["sample_id"].to_list(), rule.cheap.check_batch(batch), stage=rule.stage, rule=rule.name,
                version=rule.version, run_id=PREVIEW_RUN, config_hash=rule.config_hash))
            progress.advance(len(ids))
    finally:
        progress.done()


def _evaluate_sql(store: Store, rule: LoopRule, hits: pl.Series) -> None:
    """A SQL rule is one query over every sample, re-read each preview (the store may have grown),
    so its preview keeps only its matches (every other sample passed): at 10^6 samples, one
    INSERT of the hits instead of 10^6 rows through Python."""
    store.con.register("_hits", hits.to_frame("sample_id").to_arrow())
    try:
        stored = "(SELECT sample_id FROM preview_verdicts WHERE rule = $rule AND config_hash = $hash)"
        key = {"rule": rule.name, "hash": rule.config_hash}
        if store.scalar(f"SELECT count(*) FROM {stored}", key) == len(hits) and not store.scalar(
                f"SELECT count(*) FROM _hits ANTI JOIN {stored} USING (sample_id)", key):
            return  # the same matches as stored: rewriting them costs more than the preview (10^6: ~20 s)
        store.con.execute("DELETE FROM preview_verdicts WHERE rule = ? AND config_hash = ?",
                          [rule.name, rule.config_hash])
        store.con.execute("""
            INSERT INTO preview_verdicts
                (sample_id, stage, rule, rule_version, passed, score, reason, details, run_id, created_at,
                 prompt_tokens, completion_tokens, config_hash)
            SELECT sample_id, $stage, $rule, $version, false, 1.0, $reason, NULL, $run, $at, NULL, NULL, $hash
            FROM _hits SEMI JOIN samples USING (sample_id)""",
            {"stage": rule.stage, "rule": rule.name, "version": rule.version, "hash": rule.config_hash,
             "reason": sql_rules.hit_reason(rule.sql), "run": PREVIEW_RUN, "at": now()})
    finally:
        store.con.unregister("_hits")


# The previewed samples with their hit flag, joined to what the report groups by: a Python or
# judge rule's preview verdicts (the samples evaluated so far), or every sample for a SQL rule
# (whose preview stores its matches alone).
_COLUMNS = "f.domain, f.source, f.model, f.requested_format, f.completion_tokens, f.question_id"
# The start of the answer, for the rows shown (reading every answer would cost seconds at 10^6).
_ANSWER_START = "(SELECT left(answer, 160) FROM samples a WHERE a.sample_id = p.sample_id) AS answer_start"
_PREVIEWED = f"""
CREATE OR REPLACE TEMP TABLE _previewed AS
SELECT p.sample_id, NOT p.passed AS hit, p.reason, {_COLUMNS}
FROM preview_verdicts p JOIN sample_features f USING (sample_id)
WHERE p.rule = $rule AND p.config_hash = $hash
"""
_PREVIEWED_SQL = f"""
CREATE OR REPLACE TEMP TABLE _previewed AS
SELECT f.sample_id, p.sample_id IS NOT NULL AS hit, p.reason, {_COLUMNS}
FROM sample_features f
LEFT JOIN (SELECT sample_id, reason FROM preview_verdicts WHERE rule = $rule AND config_hash = $hash) p USING (sample_id)
"""


def _report(store: Store, rule: LoopRule, config, near: dict[str, str]) -> PreviewReport:
    store.con.execute(_PREVIEWED_SQL if rule.kind == "sql" else _PREVIEWED,
                      {"rule": rule.name, "hash": rule.config_hash})
    n, hits = store.frame("SELECT count(*) AS n, count(*) FILTER (WHERE hit) AS hits FROM _previewed").row(0)
    report = PreviewReport(rule.name, rule.kind, rule.version, rule.config_hash, n, hits, hits / n if n else 0.0)
    for column in ("domain", "source", "model", "requested_format"):
        report.by[column] = store.frame(f"""
            SELECT {column} AS value, count(*) AS samples, count(*) FILTER (WHERE hit) AS hits,
                   round(count(*) FILTER (WHERE hit) / count(*), 4) AS hit_rate
            FROM _previewed GROUP BY ALL ORDER BY hits DESC, samples DESC, value""").to_dicts()
    report.labels = _against_labels(store)
    report.cases = _against_cases(store, rule)
    report.examples = store.frame(f"""SELECT sample_id, domain, requested_format, reason, {_ANSWER_START}
                                      FROM _previewed p WHERE hit ORDER BY sample_id LIMIT {_SHOWN}""").to_dicts()
    report.near_misses = _near_misses(store, near)
    now = baseline(store, config.rebalance)  # -> preview_kept / preview_failing: the overlap, the shift
    report.overlap = _overlap(store, rule)
    report.export_shift = _export_shift(store, config, now)
    store.con.execute("DROP TABLE IF EXISTS _previewed")
    return report


def _against_labels(store: Store) -> dict:
    row = store.frame(f"""
        WITH l AS ({LABEL_PER_SAMPLE})
        SELECT count(*) FILTER (WHERE l.label = 'dirty') AS dirty, count(*) FILTER (WHERE l.label = 'clean') AS clean,
               count(*) FILTER (WHERE l.label = 'dirty' AND p.hit) AS true_positives,
               count(*) FILTER (WHERE l.label = 'clean' AND p.hit) AS false_positives,
               count(*) FILTER (WHERE l.label = 'dirty' AND NOT p.hit) AS false_negatives
        FROM l JOIN _previewed p USING (sample_id)""").row(0, named=True)
    flagged = row["true_positives"] + row["false_positives"]
    row["precision"] = round(row["true_positives"] / flagged, 4) if flagged else None
    row["recall"] = round(row["true_positives"] / row["dirty"], 4) if row["dirty"] else None
    return row


def _against_cases(store: Store, rule: LoopRule) -> dict:
    """How many bad cases the rule reaches: it fires on the bad output itself (Python rules), or
    on a candidate labelled dirty for the case."""
    out = {"cases": store.scalar("SELECT count(*) FROM bad_cases")}
    out["with_dirty_candidate_hit"] = store.scalar("""
        SELECT count(DISTINCT l.case_id) FROM current_labels l JOIN _previewed p USING (sample_id)
        WHERE l.label = 'dirty' AND p.hit AND l.case_id IS NOT NULL""")
    if rule.kind == "cheap" and out["cases"]:
        from schemas.rows import RULE_INPUT
        cases = store.frame("SELECT case_id, prompt, bad_output FROM bad_cases ORDER BY case_id")
        frame = pl.DataFrame({name: [None] * cases.height for name in RULE_INPUT}, schema=RULE_INPUT).with_columns(
            sample_id=cases["case_id"], raw_text=cases["bad_output"], answer=cases["bad_output"],
            question_text=cases["prompt"], finish_reason=pl.lit("stop"))
        try:
            fired = rule.cheap.check_batch(frame)
            out["fires_on_bad_output"] = int((~fired["passed"].fill_null(True)).sum())
        except Exception as exc:  # a rule that needs columns a bad case lacks (a reference, tests)
            out["fires_on_bad_output"] = f"not applicable: {type(exc).__name__}: {str(exc)[:80]}"
    return out


def _overlap(store: Store, rule: LoopRule) -> dict:
    """Of the hits: which rules that count now already drop them (preview_failing: their own
    verdicts, their question's, judging still owed, as sample_status says), and what only this
    rule removes (the hits kept now: in preview_kept)."""
    store.con.execute("""CREATE OR REPLACE TEMP TABLE _hit_ids AS
                         SELECT sample_id, completion_tokens FROM _previewed WHERE hit""")
    already = store.frame("""
        SELECT rule, count(DISTINCT sample_id) AS hits_already_failing
        FROM preview_failing SEMI JOIN _hit_ids USING (sample_id) WHERE rule <> ?
        GROUP BY rule ORDER BY 2 DESC, 1 LIMIT 10""", [rule.name]).to_dicts()
    unique, tokens = store.frame("""SELECT count(*), coalesce(sum(completion_tokens), 0)
                                    FROM _hit_ids SEMI JOIN preview_kept USING (sample_id)""").row(0)
    store.con.execute("DROP TABLE _hit_ids")
    return {"already_dropped_by": already, "only_this_rule_removes": unique, "tokens_removed": int(tokens)}


def _export_shift(store: Store, config, now: dict) -> dict:
    """The next export's mix and mean difficulty, as it stands (`now`, the baseline's) and
    without this rule's hits (the rebalance rerun on preview_kept less the hits)."""
    store.con.execute("""CREATE OR REPLACE TEMP TABLE _kept_with_rule AS SELECT * FROM preview_kept
                         ANTI JOIN (SELECT sample_id FROM _previewed WHERE hit) USING (sample_id)""")
    try:
        if store.scalar("SELECT count(*) FROM _kept_with_rule") == now["kept"]:
            return {"now": now, "with_rule": now}  # no hit is kept now: the same input, the same selection
        return {"now": now, "with_rule": selection_figures(store, "_kept_with_rule", config.rebalance)}
    finally:
        store.con.execute("DROP TABLE IF EXISTS _kept_with_rule")


def _near_misses(store: Store, near: dict[str, str]) -> list[dict]:
    """SQL rules: all conditions but one. Otherwise: samples labelled dirty the rule misses."""
    if near:
        frame = pl.DataFrame({"sample_id": list(near), "fails_only": list(near.values())})
        return store.frame(f"""SELECT n.sample_id, p.domain, p.requested_format, n.fails_only, {_ANSWER_START}
                               FROM _near n JOIN _previewed p USING (sample_id) ORDER BY n.sample_id""",
                           _near=frame).to_dicts()
    return store.frame(f"""WITH l AS ({LABEL_PER_SAMPLE})
                           SELECT p.sample_id, p.domain, p.requested_format, 'labelled dirty, not hit' AS fails_only,
                                  {_ANSWER_START}
                           FROM _previewed p JOIN l USING (sample_id) WHERE l.label = 'dirty' AND NOT p.hit
                           ORDER BY p.sample_id LIMIT {_SHOWN}""").to_dicts()
