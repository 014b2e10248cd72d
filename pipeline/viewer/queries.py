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


def _where(f: Filters, ids: list[str] | None) -> tuple[str, list]:
    clauses, params = [], []
    if f.domain:
        clauses.append("q.domain = ?")
        params.append(f.domain)
    if f.style:
        clauses.append("s.requested_format = ?")
        params.append(f.style)
    if f.failed:
        clauses.append("EXISTS (SELECT 1 FROM latest_verdicts v WHERE v.sample_id = s.sample_id "
                       "AND v.rule = ? AND NOT v.passed)")
        params.append(f.failed)
    if f.judge or f.judge_min is not None or f.judge_max is not None:
        clauses.append("EXISTS (SELECT 1 FROM latest_verdicts v WHERE v.sample_id = s.sample_id AND v.stage = 'judge' "
                       "AND (CAST(? AS VARCHAR) IS NULL OR v.rule = ?) "
                       "AND v.score >= coalesce(CAST(? AS DOUBLE), -1e308) "
                       "AND v.score <= coalesce(CAST(? AS DOUBLE), 1e308))")
        params += [f.judge, f.judge, f.judge_min, f.judge_max]
    if f.difficulty_min is not None:
        clauses.append("d.score >= ?")
        params.append(f.difficulty_min)
    if f.difficulty_max is not None:
        clauses.append("d.score <= ?")
        params.append(f.difficulty_max)
    if f.run:
        clauses.append("s.run_id = ?")
        params.append(f.run)
    if f.export:
        clauses.append("s.sample_id IN (SELECT sample_id FROM selections WHERE export_id = ?)")
        params.append(f.export)
    if f.kept:
        negation = "" if f.kept == "yes" else "NOT "
        clauses.append(f"s.sample_id {negation}IN (SELECT sample_id FROM sample_status WHERE kept)")
    if ids is not None:
        clauses.append("list_contains(CAST(? AS VARCHAR[]), s.sample_id)")
        params.append(ids)
    return (" AND ".join(clauses) or "true"), params


def list_samples(con: duckdb.DuckDBPyConnection, f: Filters, ids: list[str] | None = None) -> tuple[list[dict], int]:
    """(the page's samples, how many match). `ids`: search hits, best first (they set the order)."""
    where, params = _where(f, ids)
    base = f"""FROM samples s JOIN questions q USING (question_id) LEFT JOIN ({DIFFICULTY}) d USING (question_id)
               WHERE {where}"""
    total = con.sql(f"SELECT count(*) {base}", params=params).fetchall()[0][0]
    order = "list_position(CAST(? AS VARCHAR[]), s.sample_id)" if ids is not None else "s.created_at DESC, s.sample_id"
    page = con.sql(f"""SELECT s.sample_id, s.question_id, s.run_id, s.model, s.requested_format, s.realized_format,
                              q.domain, left(q.text, 160) AS question, d.score AS difficulty
                       {base} ORDER BY {order} LIMIT ? OFFSET ?""",
                   params=params + ([ids] if ids is not None else []) + [PAGE_SIZE, (f.page - 1) * PAGE_SIZE])
    rows = _dicts(page)
    page_ids = [r["sample_id"] for r in rows]
    extra = {r["sample_id"]: r for r in _dicts(con.sql("""
        SELECT st.sample_id, st.kept, st.failed_rules,
               (SELECT list(v.rule || ' ' || coalesce(CAST(v.score AS VARCHAR), 'error') ORDER BY v.rule)
                FROM latest_verdicts v WHERE v.sample_id = st.sample_id AND v.stage = 'judge') AS judge_scores,
               (SELECT list(x.export_id ORDER BY x.export_id) FROM selections x
                WHERE x.sample_id = st.sample_id) AS exports
        FROM sample_status st WHERE list_contains(CAST(? AS VARCHAR[]), st.sample_id)""", params=[page_ids]))}
    rows = [r | extra.get(r["sample_id"], {}) for r in rows]
    return rows, total


def choices(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """The values each filter can take in this store."""
    def column(sql: str) -> list:
        return [r[0] for r in con.sql(sql).fetchall()]

    return {
        "domain": column("SELECT DISTINCT domain FROM questions "
                         "WHERE question_id IN (SELECT question_id FROM samples) ORDER BY 1"),
        "style": column("SELECT DISTINCT requested_format FROM samples ORDER BY 1"),
        "failed": column("SELECT DISTINCT rule FROM verdicts WHERE NOT passed ORDER BY 1"),
        "judge": column("SELECT DISTINCT rule FROM verdicts WHERE stage = 'judge' ORDER BY 1"),
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
    status = _dicts(con.sql("SELECT kept, failed_rules, n_verdicts FROM sample_status WHERE sample_id = ?",
                            params=[sample_id]))
    return {
        "sample": sample,
        "status": status[0] if status else None,
        # Every verdict ever stored (older versions and other parameters too); `counts` marks the one
        # latest_verdicts uses for the sample's status.
        "verdicts": _dicts(con.sql("""
            SELECT v.stage, v.rule, v.rule_version, v.passed, v.score, v.reason, v.details, v.run_id, v.config_hash,
                   v.created_at, v.prompt_tokens, v.completion_tokens,
                   EXISTS (SELECT 1 FROM latest_verdicts l WHERE l.sample_id = v.sample_id AND l.rule = v.rule
                           AND l.rule_version = v.rule_version AND l.config_hash = v.config_hash
                           AND l.created_at = v.created_at) AS counts
            FROM verdicts v WHERE v.sample_id = ?
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
