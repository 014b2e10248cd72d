"""`curate rules preview RULE`: what a rule would remove, before it counts.

Its verdicts go to `preview_verdicts` (the verdicts' shape, read by nothing else), so
sample_status, kept_samples and exports are untouched until `curate rules enable`. A second
preview of the same rule version and parameters reuses the stored preview verdicts.

The report: hits and hit rate by domain, source, model and requested style; precision and
recall against the labelled candidates; how many bad cases it catches; 20 hits and 20 near
misses; overlap with the rules that count now and what it alone removes (samples and tokens);
and the next export's domain mix and difficulty with and without it (the rebalance rerun on
the kept samples; the chat-template checks of a real export are not rerun).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from pipeline.misalignment import sql_rules
from pipeline.misalignment.labels import LABEL_PER_SAMPLE
from pipeline.misalignment.loop_rules import LoopRule
from pipeline.progress import NoProgress, Progress
from pipeline.store import Store
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
            progress: Progress | None = None) -> PreviewReport:
    """Compute the preview verdicts still missing, then the report."""
    if rule.kind == "judge":
        raise NotImplementedError(
            f"{rule.name} is a judge rule: try it on samples with `curate judges test {rule.name} SAMPLE_ID`; "
            "previews here cover SQL and Python rules")
    hits = sql_rules.matching_ids(db, rule.sql) if rule.kind == "sql" else None  # before the store opens
    near = _near_miss_ids(db, rule.sql) if rule.kind == "sql" else {}
    with Store(db) as store:
        _evaluate(store, rule, hits, limit, progress or NoProgress())
        return _report(store, rule, config, near)


def _evaluate(store: Store, rule: LoopRule, hits: set[str] | None, limit: int | None, progress: Progress) -> None:
    due = store.frame(f"""SELECT sample_id FROM samples s WHERE NOT EXISTS (
                              SELECT 1 FROM preview_verdicts p WHERE p.sample_id = s.sample_id
                              AND p.rule = ? AND p.config_hash = ?)
                          ORDER BY sample_id""" + (f" LIMIT {int(limit)}" if limit else ""),
                      [rule.name, rule.config_hash])["sample_id"]
    progress.start(f"preview {rule.name}", len(due))
    try:
        for start in range(0, len(due), _CHUNK):
            ids = due[start:start + _CHUNK]
            if rule.kind == "sql":
                results = sql_rules.results_for(ids.to_list(), hits, rule.sql)
                sample_ids = ids.to_list()
            else:
                batch = store.frame(f"SELECT x.* FROM ({SAMPLE_VIEW}) x JOIN _ids USING (sample_id) ORDER BY sample_id",
                                    _ids=ids.to_frame())
                results = rule.cheap.check_batch(batch)
                sample_ids = batch["sample_id"].to_list()
            store.replace("preview_verdicts", verdict_frame(
                sample_ids, results, stage=rule.stage, rule=rule.name, version=rule.version,
                run_id=PREVIEW_RUN, config_hash=rule.config_hash))
            progress.advance(len(ids))
    finally:
        progress.done()


# The preview verdicts of this rule and hash, joined to what the report groups by.
_PREVIEWED = """
CREATE OR REPLACE TEMP TABLE _previewed AS
SELECT p.sample_id, NOT p.passed AS hit, p.reason, f.domain, f.source, f.model, f.requested_format,
       f.completion_tokens, f.question_id, left(f.answer, 160) AS answer_start
FROM preview_verdicts p JOIN sample_features f USING (sample_id)
WHERE p.rule = ? AND p.config_hash = ?
"""


def _report(store: Store, rule: LoopRule, config, near: dict[str, str]) -> PreviewReport:
    store.con.execute(_PREVIEWED, [rule.name, rule.config_hash])
    n, hits = store.frame("SELECT count(*) AS n, count(*) FILTER (WHERE hit) AS hits FROM _previewed").row(0)
    report = PreviewReport(rule.name, rule.kind, rule.version, rule.config_hash, n, hits, hits / n if n else 0.0)
    for column in ("domain", "source", "model", "requested_format"):
        report.by[column] = store.frame(f"""
            SELECT {column} AS value, count(*) AS samples, count(*) FILTER (WHERE hit) AS hits,
                   round(count(*) FILTER (WHERE hit) / count(*), 4) AS hit_rate
            FROM _previewed GROUP BY ALL ORDER BY hits DESC, samples DESC, value""").to_dicts()
    report.labels = _against_labels(store)
    report.cases = _against_cases(store, rule)
    report.examples = store.frame(f"""SELECT sample_id, domain, requested_format, reason, answer_start
                                      FROM _previewed WHERE hit ORDER BY sample_id LIMIT {_SHOWN}""").to_dicts()
    report.near_misses = _near_misses(store, near)
    report.overlap = _overlap(store, rule)
    report.export_shift = _export_shift(store, config)
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
    """Of the hits: which rules that count now already drop them, and what only this rule removes."""
    store.con.execute("""CREATE OR REPLACE TEMP TABLE _hit_status AS
        SELECT p.sample_id, p.completion_tokens, st.kept, st.failed_rules
        FROM _previewed p JOIN sample_status st USING (sample_id) WHERE p.hit""")
    already = store.frame("""SELECT r AS rule, count(*) AS hits_already_failing
                             FROM (SELECT unnest(failed_rules) AS r FROM _hit_status) WHERE r <> ?
                             GROUP BY r ORDER BY 2 DESC, 1 LIMIT 10""", [rule.name]).to_dicts()
    unique, tokens = store.frame("""SELECT count(*), coalesce(sum(completion_tokens), 0)
                                    FROM _hit_status WHERE kept""").row(0)
    store.con.execute("DROP TABLE _hit_status")
    return {"already_dropped_by": already, "only_this_rule_removes": unique, "tokens_removed": int(tokens)}


def _export_shift(store: Store, config) -> dict:
    """The next export's mix and mean difficulty, as it stands and without this rule's hits."""
    from pipeline.export.rebalance import rebalance_store
    from pipeline.stages.export import _KEPT

    store.con.execute(_KEPT)
    out = {}
    for when in ("now", "with_rule"):
        if when == "with_rule":
            store.con.execute("DELETE FROM _kept WHERE sample_id IN (SELECT sample_id FROM _previewed WHERE hit)")
        rebalance_store(store, "_kept", config.rebalance)
        out[when] = {"kept": store.scalar("SELECT count(*) FROM _kept"),
                     "selected_by_domain": dict(store.frame(
                         "SELECT domain, count(*) FROM _chosen GROUP BY domain ORDER BY domain").rows()),
                     "mean_difficulty": store.scalar("SELECT round(avg(difficulty), 4) FROM _chosen")}
    store.con.execute("DROP TABLE IF EXISTS _chosen")
    store.con.execute("DROP TABLE IF EXISTS _kept")
    return out


# --- near misses of a SQL rule: samples that meet every condition of the clause but one -----------

def conjuncts(where: str) -> list[str]:
    """The top-level AND parts of a clause (parentheses, quotes and BETWEEN x AND y respected)."""
    pieces, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(where):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "()":
            depth += 1 if ch == "(" else -1
        elif depth == 0 and re.match(r"(?i)\sAND\s", where[i:i + 5]) and i >= start:
            pieces.append(where[start:i])
            start = i + 5
    pieces.append(where[start:])
    parts: list[str] = []
    for piece in pieces:
        if parts and re.search(r"(?i)\bBETWEEN\b", _outside_parens(parts[-1])) \
                and not re.search(r"(?i)\bBETWEEN\b.*\bAND\b", _outside_parens(parts[-1])):
            parts[-1] = f"{parts[-1]} AND {piece}"  # the AND of `x BETWEEN a AND b`
        else:
            parts.append(piece)
    return [p.strip() for p in parts if p.strip()]


def _outside_parens(text: str) -> str:
    return re.sub(r"\([^()]*\)", "()", text)


def _near_miss_ids(db: str | Path, rule) -> dict[str, str]:
    """sample_id -> the one condition it fails, for up to 20 samples (read-only connection)."""
    from pipeline.read_only_query import connect

    parts = conjuncts(rule.where)
    if len(parts) < 2:
        return {}
    met = " + ".join(f"coalesce(({p}), false)::INT" for p in parts)
    failed = " ".join(f"WHEN NOT coalesce(({p}), false) THEN {i}" for i, p in enumerate(parts))
    source = "sample_features" + (" LEFT JOIN sample_verdict_features USING (sample_id)"
                                  if sql_rules.uses_verdict_features(rule.where) else "")
    con = connect(db)
    try:
        rows = con.sql(f"""SELECT sample_id, CASE {failed} END AS missed FROM {source}
                           WHERE {met} = {len(parts) - 1} ORDER BY sample_id LIMIT {_SHOWN}""").fetchall()
    finally:
        con.close()
    return {sample_id: parts[missed] for sample_id, missed in rows}


def _near_misses(store: Store, near: dict[str, str]) -> list[dict]:
    """SQL rules: all conditions but one. Otherwise: samples labelled dirty the rule misses."""
    if near:
        frame = pl.DataFrame({"sample_id": list(near), "fails_only": list(near.values())})
        return store.frame("""SELECT n.sample_id, p.domain, p.requested_format, n.fails_only, p.answer_start
                              FROM _near n JOIN _previewed p USING (sample_id) ORDER BY n.sample_id""",
                           _near=frame).to_dicts()
    return store.frame(f"""WITH l AS ({LABEL_PER_SAMPLE})
                           SELECT p.sample_id, p.domain, p.requested_format, 'labelled dirty, not hit' AS fails_only,
                                  p.answer_start
                           FROM _previewed p JOIN l USING (sample_id) WHERE l.label = 'dirty' AND NOT p.hit
                           ORDER BY p.sample_id LIMIT {_SHOWN}""").to_dicts()
