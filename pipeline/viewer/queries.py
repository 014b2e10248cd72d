"""The viewer's SQL: the filtered sample list, the filter choices, one sample with everything
stored about it. Every value from the browser is a bound parameter, never SQL text.

Reads the base tables and the views every store since schema 6 has (latest_verdicts,
sample_status, latest_question_verdicts), so a store made by an older version opens too (the
viewer cannot upgrade it: it is read-only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Mapping

import duckdb

PAGE_SIZE = 50

# The newest combined difficulty of each question (pipeline/difficulty): what "difficulty" filters on.
DIFFICULTY = """SELECT question_id, score FROM question_difficulty WHERE method = 'combined'
                QUALIFY row_number() OVER (PARTITION BY question_id ORDER BY version DESC, created_at DESC) = 1"""


class BadFilter(ValueError):
    """A filter value the viewer cannot use (e.g. a score that is not a number)."""


@dataclass
class Filters:
    domain: str | None = None
    style: str | None = None           # the requested answer style (samples.requested_format)
    failed: str | None = None          # a rule whose latest verdict failed
    judge: str | None = None           # the judge rule the score bounds apply to (none: any judge)
    judge_min: float | None = None
    judge_max: float | None = None
    difficulty_min: float | None = None
    difficulty_max: float | None = None
    run: str | None = None
    export: str | None = None
    kept: str | None = None            # yes | no
    q: str | None = None               # full-text search (search.py)
    page: int = 1

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> "Filters":
        """From the page's query string: empty fields are unset; a bad number names its field."""
        values = {}
        for f in fields(cls):
            raw = (params.get(f.name) or "").strip()
            if not raw:
                continue
            if f.name == "page" or f.name.endswith(("_min", "_max")):
                try:
                    values[f.name] = int(raw) if f.name == "page" else float(raw)
                except ValueError:
                    raise BadFilter(f"{f.name}: {raw!r} is not a number") from None
            else:
                values[f.name] = raw
        if values.get("kept") not in (None, "yes", "no"):
            raise BadFilter(f"kept: {values['kept']!r} must be yes or no")
        if values.get("page", 1) < 1:
            raise BadFilter("page: must be 1 or more")
        return cls(**values)

    def query_string(self, **changes) -> dict:
        """The filters as query parameters (for links to other pages of the same list)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)} | changes
        return {k: v for k, v in current.items() if v is not None and not (k == "page" and v == 1)}


def _where(f: Filters, ids: list[str] | None, judge_rules: list[str]) -> tuple[str, str, list]:
    """(joins, where, parameters) selecting the samples `f` keeps. Filters on a rule name are
    written so DuckDB pushes them into latest_verdicts' window (partitioned by sample and rule);
    "kept" reads the lean kept_samples view, not sample_status's aggregation of every verdict."""
    joins, clauses, params = [], [], []
    if f.domain:
        joins.append("JOIN questions q USING (question_id)")
        clauses.append("q.domain = ?")
        params.append(f.domain)
    if f.style:
        clauses.append("s.requested_format = ?")
        params.append(f.style)
    if f.failed:
        clauses.append("s.sample_id IN (SELECT sample_id FROM latest_verdicts WHERE rule = ? AND NOT passed)")
        params.append(f.failed)
    if f.judge or f.judge_min is not None or f.judge_max is not None:
        # Any judge: its rules as a constant list (a filter on the stage would read every verdict).
        clauses.append("s.sample_id IN (SELECT sample_id FROM latest_verdicts "
                       "WHERE list_contains(CAST(? AS VARCHAR[]), rule) "
                       "AND stage = 'judge' AND score >= coalesce(CAST(? AS DOUBLE), -1e308) "
                       "AND score <= coalesce(CAST(? AS DOUBLE), 1e308))")
        params += [[f.judge] if f.judge else judge_rules, f.judge_min, f.judge_max]
    if f.difficulty_min is not None or f.difficulty_max is not None:
        joins.append(f"JOIN ({DIFFICULTY}) d USING (question_id)")
        clauses.append("d.score >= coalesce(CAST(? AS DOUBLE), -1e308) "
                       "AND d.score <= coalesce(CAST(? AS DOUBLE), 1e308)")
        params += [f.difficulty_min, f.difficulty_max]
    if f.run:
        clauses.append("s.run_id = ?")
        params.append(f.run)
    if f.export:
        clauses.append("s.sample_id IN (SELECT sample_id FROM selections WHERE export_id = ?)")
        params.append(f.export)
    if f.kept:
        negation = "" if f.kept == "yes" else "NOT "
        clauses.append(f"s.sample_id {negation}IN (SELECT sample_id FROM kept_samples)")
    if ids is not None:
        clauses.append("list_contains(CAST(? AS VARCHAR[]), s.sample_id)")
        params.append(ids)
    return " ".join(joins), (" AND ".join(clauses) or "true"), params


def list_samples(con: duckdb.DuckDBPyConnection, f: Filters, ids: list[str] | None = None,
                 judges: list[str] | None = None) -> tuple[list[dict], int]:
    """(the page's samples, how many match). `ids`: search hits, best first (they set the order);
    `judges`: the store's judge rules when the caller has them (choices()), else read here."""
    joins, where, params = _where(f, ids, judge_rules(con) if judges is None else judges)
    order = "list_position(CAST(? AS VARCHAR[]), s.sample_id)" if ids is not None else "s.created_at DESC, s.sample_id"
    # One pass for the page and the count (count(*) OVER () runs before the LIMIT).
    found = con.sql(f"""SELECT s.sample_id, count(*) OVER () FROM samples s {joins} WHERE {where}
                        ORDER BY {order} LIMIT ? OFFSET ?""",
                    params=params + ([ids] if ids is not None else [])
                    + [PAGE_SIZE, (f.page - 1) * PAGE_SIZE]).fetchall()
    if not found and f.page > 1:  # past the last page: the count alone
        total = con.sql(f"SELECT count(*) FROM samples s {joins} WHERE {where}", params=params).fetchall()[0][0]
    else:
        total = found[0][1] if found else 0
    return page_rows(con, [r[0] for r in found]), total


def page_rows(con: duckdb.DuckDBPyConnection, ids: list[str]) -> list[dict]:
    """What the list shows of these samples, in this order. Each part is read with the ids as a
    constant list, which DuckDB pushes down to the tables (a join with the page would read whole views)."""
    if not ids:
        return []
    ids_param = [ids]
    rows = {r["sample_id"]: r for r in _dicts(con.sql("""
        SELECT s.sample_id, s.question_id, s.run_id, s.model, s.requested_format, s.realized_format, s.created_at,
               q.domain, left(q.text, 160) AS question
        FROM samples s JOIN questions q USING (question_id) WHERE list_contains(CAST(? AS VARCHAR[]), s.sample_id)""",
                                                            params=ids_param))}
    questions = sorted({r["question_id"] for r in rows.values()})
    difficulty = dict(con.sql(f"SELECT question_id, score FROM ({DIFFICULTY}) "
                              "WHERE list_contains(CAST(? AS VARCHAR[]), question_id)", params=[questions]).fetchall())
    status = {r["sample_id"]: r for r in status_of(con, ids, questions)}
    judges: dict[str, list[str]] = {}
    for sid, rule, score in con.sql("""SELECT sample_id, rule, score FROM latest_verdicts
                                       WHERE list_contains(CAST(? AS VARCHAR[]), sample_id) AND stage = 'judge'
                                       ORDER BY sample_id, rule""", params=ids_param).fetchall():
        judges.setdefault(sid, []).append(f"{rule} {'error' if score is None else f'{score:g}'}")
    exports = dict(con.sql("""SELECT sample_id, list(export_id ORDER BY export_id) FROM selections
                              WHERE list_contains(CAST(? AS VARCHAR[]), sample_id) GROUP BY sample_id""",
                           params=ids_param).fetchall())
    return [rows[i] | {"difficulty": difficulty.get(rows[i]["question_id"]), "judge_scores": judges.get(i, []),
                       "exports": exports.get(i, [])}
            | {k: status.get(i, {}).get(k) for k in ("kept", "failed_rules")} for i in ids if i in rows]


# sample_status (pipeline/store.py) for a list of samples: the same three verdict sources and the
# same aggregation, with the ids applied to each source before aggregating (DuckDB does not push an
# id list into the view). tests/viewer/test_viewer_app.py checks the two agree on a real store.
PAGE_STATUS = """
WITH v AS (
    SELECT sample_id, rule, passed FROM latest_verdicts WHERE list_contains(CAST(? AS VARCHAR[]), sample_id)
    UNION ALL
    SELECT s.sample_id, qv.rule, qv.passed
    FROM samples s JOIN (SELECT * FROM latest_question_verdicts
                         WHERE list_contains(CAST(? AS VARCHAR[]), question_id)) qv USING (question_id)
    WHERE list_contains(CAST(? AS VARCHAR[]), s.sample_id)
    UNION ALL
    SELECT DISTINCT sample_id, rule || ' (pending)', false FROM judge_pending
    WHERE list_contains(CAST(? AS VARCHAR[]), sample_id)
)
SELECT sample_id,
       count(rule) > 0 AND coalesce(bool_and(passed), false) AS kept,
       coalesce(list(rule ORDER BY rule) FILTER (WHERE NOT passed), []) AS failed_rules,
       count(rule) AS n_verdicts
FROM v GROUP BY sample_id"""


def status_of(con: duckdb.DuckDBPyConnection, ids: list[str], question_ids: list[str]) -> list[dict]:
    """sample_status's rows (sample_id, kept, failed_rules, n_verdicts) of these samples, whose
    questions are `question_ids`; a sample with no verdict at all has no row."""
    return _dicts(con.sql(PAGE_STATUS, params=[ids, question_ids, ids, ids]))


def judge_rules(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.sql("SELECT DISTINCT rule FROM verdicts WHERE stage = 'judge' ORDER BY 1").fetchall()]


def choices(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """The values each filter can take in this store."""
    def column(sql: str) -> list:
        return [r[0] for r in con.sql(sql).fetchall()]

    return {
        "domain": column("SELECT DISTINCT domain FROM questions "
                         "WHERE question_id IN (SELECT question_id FROM samples) ORDER BY 1"),
        "style": column("SELECT DISTINCT requested_format FROM samples ORDER BY 1"),
        "failed": column("SELECT DISTINCT rule FROM verdicts WHERE NOT passed ORDER BY 1"),
        "judge": judge_rules(con),
        "run": column("SELECT run_id FROM runs ORDER BY started_at DESC"),
        "export": column("SELECT export_id FROM exports ORDER BY created_at DESC"),
    }


def sample_detail(con: duckdb.DuckDBPyConnection, sample_id: str) -> dict | None:
    """Everything stored about one sample, or None when there is no such sample."""
    found = _dicts(con.sql("""SELECT s.*, q.text AS question_text, q.domain, q.subdomain, q.source, q.reference_answer,
                                     q.answer_type, q.level, q.pool_path, q.pool_line, q.tests
                              FROM samples s JOIN questions q USING (question_id) WHERE s.sample_id = ?""",
                           params=[sample_id]))
    if not found:
        return None
    sample = found[0]
    sample["messages"] = _json(sample["messages"])
    qid = [sample["question_id"]]
    status = status_of(con, [sample_id], [sample["question_id"]])
    return {
        "sample": sample,
        "status": status[0] if status else None,
        # Every verdict ever stored (older versions and other parameters too); `counts` marks the one
        # latest_verdicts uses for the sample's status.
        "verdicts": _dicts(con.sql("""
            SELECT v.stage, v.rule, v.rule_version, v.passed, v.score, v.reason, v.details, v.run_id, v.config_hash,
                   v.created_at, v.prompt_tokens, v.completion_tokens, l.rule IS NOT NULL AS counts
            FROM verdicts v
            LEFT JOIN (SELECT rule, rule_version, config_hash, created_at FROM latest_verdicts
                       WHERE sample_id = $1) l USING (rule, rule_version, config_hash, created_at)
            WHERE v.sample_id = $1
            ORDER BY CASE v.stage WHEN 'filter' THEN 1 WHEN 'decontam' THEN 2 WHEN 'verify' THEN 3
                                  WHEN 'judge' THEN 4 ELSE 5 END,
                     v.rule, v.rule_version DESC, v.created_at DESC""", params=[sample_id])),
        "question_verdicts": _dicts(con.sql("""
            SELECT stage, rule, rule_version, passed, score, reason, details, run_id, created_at
            FROM question_verdicts WHERE question_id = ? ORDER BY stage, rule, rule_version DESC, created_at DESC""",
                                            params=qid)),
        "difficulty": _dicts(con.sql("""
            SELECT method, version, score, n_samples, detail, run_id, created_at FROM question_difficulty
            WHERE question_id = ? ORDER BY method = 'combined' DESC, method, version DESC, created_at DESC""",
                                     params=qid)),
        "exports": _dicts(con.sql("""
            SELECT x.export_id, e.run_id, e.created_at, e.out_dir, x.domain, x.difficulty, x.reason,
                   (SELECT list(file ORDER BY file) FROM shards h WHERE h.export_id = x.export_id) AS shard_files
            FROM selections x JOIN exports e USING (export_id) WHERE x.sample_id = ? ORDER BY e.created_at DESC""",
                                  params=[sample_id])),
        "rejects": _dicts(con.sql("SELECT export_id, reason, tokens FROM export_rejects "
                                  "WHERE sample_id = ? ORDER BY export_id",
                                  params=[sample_id])),
    }


def _json(text: str | None):
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return text


def _dicts(relation: duckdb.DuckDBPyRelation) -> list[dict]:
    names = relation.columns
    return [dict(zip(names, row)) for row in relation.fetchall()]
