"""SQL rules (schemas/sql_rule.py): loaded with file:line errors, the `where` clause checked to
be one expression, and evaluated on a read-only connection with external access off, so a
clause can read the store's samples and nothing else, and change nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import polars as pl

from filters.base import config_fingerprint
from pipeline.read_only_query import QueryRefused, connect
from schemas.sql_rule import SqlRule
from schemas.yaml_loading import ConfigError, load_yaml_model

STAGE = "sql"  # the verdicts' stage
BUILT_IN_DIR = Path(__file__).resolve().parents[2] / "filters" / "sql"
# A verdict feature a clause may name -> the view (one row per sample) that holds it (pipeline/store.py).
VERDICT_FEATURES = {"failed_rules": "sample_failed_rules", "judge_scores": "sample_judge_scores",
                    "kept": "sample_kept_by_verdicts", "difficulty": "sample_difficulty"}


def load_sql_rule(path: str | Path) -> SqlRule:
    """The rule in `path`, its clause checked; ConfigError (file:line: field) otherwise."""
    return load_yaml_model(path, SqlRule, checks=lambda rule: [(("where",), m) for m in clause_errors(rule.where)])


def find_sql_rule(ref: str, folders: list[Path] | None = None) -> tuple[SqlRule, Path] | None:
    """A SQL rule by YAML path, or by name in the folders (default: filters/sql)."""
    path = Path(ref)
    candidates = [path] if path.suffix in (".yaml", ".yml") else \
        [folder / f"{ref}{ext}" for folder in [*(folders or []), BUILT_IN_DIR] for ext in (".yaml", ".yml")]
    for candidate in candidates:
        if candidate.is_file() and _has_where(candidate):
            return load_sql_rule(candidate), candidate
    return None


def _has_where(path: Path) -> bool:
    """A YAML with a top-level `where:` is a SQL rule (a judge rule has a prompt instead)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return True  # let the loader say what is wrong, with file and line
    return isinstance(data, dict) and "where" in data


def config_hash(rule: SqlRule) -> str:
    return config_fingerprint(rule.name, rule.version, {"where": " ".join(rule.where.split())})


def source(rule_where: str) -> str:
    """What a clause reads: the sample features, and the verdict features it names, each its own
    join (at 10^6 samples, joining all four costs about twice the one a clause usually needs)."""
    joins = "".join(f" LEFT JOIN {view} USING (sample_id)" for name, view in VERDICT_FEATURES.items()
                    if _names(rule_where, name))
    return f"sample_features{joins}"


def query(rule_where: str) -> str:
    """The SELECT of the samples a clause matches."""
    return f"SELECT sample_id FROM {source(rule_where)} WHERE ({rule_where})"


def _names(where: str, column: str) -> bool:
    return re.search(rf"\b{column}\b", where) is not None


def clause_errors(where: str) -> list[str]:
    """Why a clause is not one expression (a UNION, a second statement, a closing parenthesis
    escaping the WHERE), or [] when it is. Column names are checked when it runs."""
    try:
        statements = duckdb.extract_statements(query(where))
    except duckdb.Error as exc:
        return [f"not a SQL expression: {str(exc).splitlines()[0]}"]
    if len(statements) != 1 or statements[0].type.name != "SELECT":
        return ["must be one expression (no ';', no other statement)"]
    try:
        tree = json.loads(duckdb.sql("SELECT json_serialize_sql(?)", params=[query(where)]).fetchall()[0][0])
        node = tree["statements"][0]["node"]
    except (duckdb.Error, KeyError, IndexError, json.JSONDecodeError) as exc:
        return [f"cannot be parsed as an expression: {exc}"]
    if node.get("type") != "SELECT_NODE" or node.get("from_table", {}).get("type") not in ("BASE_TABLE", "JOIN"):
        return ["must be an expression inside WHERE (a ')' closing it early, a UNION or a set operation is not)"]
    # Only the store's own tables: no table functions (read_text, read_csv, glob, ...), so the
    # clause can run on the pipeline's own connection too (the sql-rules stage of a run).
    errors = []
    for kind, name in _table_refs(tree):
        if kind == "TABLE_FUNCTION":
            errors.append(f"reads {name}(): a rule may read only the store's tables, not files or functions")
        elif kind == "BASE_TABLE" and any(c in str(name) for c in "./:\\"):  # another catalog, or a file path
            errors.append(f"reads {name}: a rule may read only this store's tables")
    return errors


def _table_refs(node) -> list[tuple[str, str]]:
    out = []
    if isinstance(node, dict):
        if node.get("type") == "TABLE_FUNCTION":
            out.append(("TABLE_FUNCTION", node.get("function", {}).get("function_name", "?")))
        elif node.get("type") == "BASE_TABLE":
            qualified = ".".join(p for p in (node.get("catalog_name"), node.get("schema_name")) if p)
            out.append(("BASE_TABLE", f"{qualified}.{node.get('table_name')}" if qualified else node.get("table_name")))
        for value in node.values():
            out += _table_refs(value)
    elif isinstance(node, list):
        for value in node:
            out += _table_refs(value)
    return out


def matching_ids(db: str | Path, rule: SqlRule, timeout_s: float = 300) -> set[str]:
    """The sample ids the clause matches, read on a locked-down read-only connection."""
    return set(matches(db, rule, timeout_s=timeout_s)[0].to_list())


def matches(db: str | Path, rule: SqlRule, *, near_misses: int = 0,
            timeout_s: float = 300) -> tuple[pl.Series, dict[str, str]]:
    """The sample ids the clause matches and, for a clause of several AND-ed conditions, up to
    `near_misses` samples meeting all but one (sample_id -> the condition it fails), in one scan
    on a locked-down read-only connection."""
    import threading

    parts = conjuncts(rule.where) if near_misses else []
    if len(parts) < 2:
        sql = query(rule.where).replace("SELECT sample_id FROM", "SELECT sample_id, true AS hit, NULL AS missed FROM", 1)
    else:
        met = " + ".join(f"coalesce(({p}), false)::INT" for p in parts)
        failed = " ".join(f"WHEN NOT coalesce(({p}), false) THEN {i}" for i, p in enumerate(parts))
        hit = f"coalesce(({rule.where}), false)"
        sql = f"""SELECT sample_id, {hit} AS hit, CASE WHEN NOT {hit} THEN CASE {failed} END END AS missed
                  FROM {source(rule.where)} WHERE {hit} OR {met} = {len(parts) - 1}
                  QUALIFY {hit} OR row_number() OVER (PARTITION BY {hit} ORDER BY sample_id) <= {int(near_misses)}"""
    from pipeline.store import Store

    Store(db).close()  # the views the clause reads, as this code defines them (a store made by older code)
    con = connect(db)
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        rows = con.sql(sql).pl()  # columnar: 10^6 matches as Python tuples cost seconds
    except duckdb.InterruptException:
        raise QueryRefused(f"rule {rule.name}: the clause ran longer than {timeout_s:g} s") from None
    except duckdb.Error as exc:
        raise ConfigError(f"rule {rule.name}: the where clause fails on this store: {str(exc).splitlines()[0]}") from None
    finally:
        timer.cancel()
        con.close()
    near = rows.filter(~pl.col("hit"))
    return (rows.filter(pl.col("hit"))["sample_id"],
            {sid: parts[missed] for sid, missed in zip(near["sample_id"], near["missed"])})


def hit_reason(rule: SqlRule) -> str:
    return f"matches: {rule.where[:200]}"


def results_for(sample_ids: list[str], hits: set[str], rule: SqlRule) -> pl.DataFrame:
    """passed/score/reason per sample: a match fails."""
    hit = [s in hits for s in sample_ids]
    return pl.DataFrame({"passed": [not h for h in hit], "score": [float(h) for h in hit],
                         "reason": [hit_reason(rule) if h else None for h in hit]},
                        schema={"passed": pl.Boolean, "score": pl.Float64, "reason": pl.String})


# --- the top-level AND parts of a clause (near misses meet all but one) ---------------------------

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
