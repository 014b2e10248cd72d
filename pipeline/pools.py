"""Read question pools into `Question`s; bad rows go to quarantine with file, line and field.

JSONL and JSON are parsed with the standard library, record by record, because polars'
ndjson reader rejects a whole file for one bad line and reports no line number. Parquet is
read with polars and local HF `datasets` folders with `datasets.load_from_disk`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from schemas.config import PoolConfig
from schemas.question import DOMAINS, Question, QuarantineRow, question_id_for

_RAW_PREVIEW = 500
# Sandboxed: a config's template reaches no Python object; record values are never evaluated.
_jinja = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


def template_errors(config) -> list[tuple[tuple, str]]:
    """Pools whose question_template is not valid Jinja, found when the config is loaded
    (its variables are the records' fields, known only when a row is read)."""
    errors = []
    for i, pool in enumerate(config.pools):
        if pool.question_template:
            try:
                _jinja.parse(pool.question_template)
            except jinja2.TemplateSyntaxError as exc:
                errors.append((("pools", i, "question_template"),
                               f"Jinja syntax error on line {exc.lineno} of the template: {exc.message}"))
    return errors


class RowError(ValueError):
    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field


@dataclass
class PoolResult:
    questions: list[Question] = field(default_factory=list)
    quarantine: list[QuarantineRow] = field(default_factory=list)


# --- raw records with their locations -------------------------------------------------


def _iter_jsonl(path: Path) -> Iterator[tuple[int, object | RowError, str]]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line), line
            except json.JSONDecodeError as exc:
                yield line_no, RowError(None, f"invalid JSON: {exc.msg} at column {exc.colno}"), line


def _top_level_array_start(text: str, key: str) -> int | None:
    """Offset just inside the array stored under `key` of the top-level object (not a nested
    key of the same name): walk the top-level members, decoding and skipping each value."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[\s,]*")
    pos = ws.match(text, text.index("{") + 1).end()
    while pos < len(text) and text[pos] != "}":
        name, pos = decoder.raw_decode(text, pos)
        pos = re.compile(r"\s*:\s*").match(text, pos).end()
        if name == key and text[pos] == "[":
            return pos + 1
        _, pos = decoder.raw_decode(text, pos)
        pos = ws.match(text, pos).end()
    return None


def _iter_json(path: Path, records_key: str | None) -> Iterator[tuple[int, object | RowError, str]]:
    """Yield each record of a top-level array (or `records_key` array) with its line number."""
    text = path.read_text(encoding="utf-8", errors="replace")
    decoder = json.JSONDecoder()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        yield exc.lineno, RowError(None, f"invalid JSON: {exc.msg} at column {exc.colno}"), ""
        return
    if records_key is not None:
        if not isinstance(doc, dict) or records_key not in doc:
            yield 1, RowError(records_key, f"no key {records_key!r} holding the records"), ""
            return
        meta = {k: v for k, v in doc.items() if not isinstance(v, (list, dict))}
        doc = doc[records_key]
        if isinstance(doc, list):  # top-level scalars (e.g. BIG-bench task_prefix) for templates
            doc = [dict(r, pool_meta=meta) if isinstance(r, dict) else r for r in doc]
        start = _top_level_array_start(text, records_key)
    else:
        start = text.index("[") + 1 if isinstance(doc, list) else None
    if not isinstance(doc, list):
        yield 1, RowError(records_key, f"expected a list of records, got {type(doc).__name__}"), ""
        return
    if start is None:  # cannot locate the array: fall back to record numbers
        for i, rec in enumerate(doc, start=1):
            yield i, rec, ""
        return
    pos, line = start, text.count("\n", 0, start) + 1
    ws = re.compile(r"[\s,]*")
    for rec in doc:
        skip = ws.match(text, pos).end()
        line += text.count("\n", pos, skip)
        _, end = decoder.raw_decode(text, skip)
        yield line, rec, text[skip:end]
        line += text.count("\n", skip, end)
        pos = end


def _iter_parquet(path: Path) -> Iterator[tuple[int, object, str]]:
    import polars as pl

    for i, rec in enumerate(pl.read_parquet(path).iter_rows(named=True), start=1):
        yield i, rec, ""


def _iter_hf_folder(path: Path, split: str | None) -> Iterator[tuple[int, object, str]]:
    import datasets

    data = datasets.load_from_disk(str(path))
    if isinstance(data, datasets.DatasetDict):
        name = split or ("train" if "train" in data else next(iter(data)))
        if name not in data:
            raise RowError("split", f"split {name!r} not in {list(data)}")
        data = data[name]
    for i, rec in enumerate(data, start=1):
        yield i, rec, ""


def iter_records(pool: PoolConfig, path: Path) -> Iterator[tuple[int, object | RowError, str]]:
    if path.is_dir():
        return _iter_hf_folder(path, pool.split)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return _iter_jsonl(path)
    if suffix == ".json":
        return _iter_json(path, pool.records_key)
    if suffix == ".parquet":
        return _iter_parquet(path)
    raise RowError(None, f"unsupported pool format {suffix!r} (use .jsonl, .json, .parquet or an HF datasets folder)")


# --- mapping one record to a Question --------------------------------------------------


def get_path(record: dict, dotted: str):
    """record["a"]["b"] for "a.b"; None when any part is missing."""
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _as_text(value, field: str, required: bool) -> str | None:
    if value is None:
        if required:
            raise RowError(field, f"missing required field {field!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RowError(field, f"field {field!r} must be a string or a number, got {type(value).__name__}")
    text = str(value).strip()
    if required and not text:
        raise RowError(field, f"field {field!r} is empty")
    return text or None


def _as_answer(value, field: str) -> str | None:
    """References may be text, numbers, booleans or lists of those (TheoremQA has all four)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            raise RowError(field, f"field {field!r} must be text, a number, a boolean or a list of those")
        return json.dumps(value)
    return _as_text(value, field, required=False)


def _reference(pool: PoolConfig, record: dict) -> tuple[str | None, str, str | None]:
    """(reference answer, text appended to the question such as the options, answer type)."""
    if pool.answer_extract == "bigbench":
        scores = record.get("target_scores")
        if isinstance(scores, dict) and scores:
            best = max(scores, key=lambda k: scores[k])
            return best, "\n\nOptions: " + "; ".join(scores), "choice"
        target = record.get("target")
        if isinstance(target, list):  # alternatives such as ["three", "3"]: prefer the number
            numeric = [t for t in target if isinstance(t, str) and re.fullmatch(r"-?[\d.,]+", t.strip())]
            target = numeric[0] if numeric else (target[0] if target else None)
        text = _as_text(target, "target", required=True)
        return text, "", "math" if re.fullmatch(r"-?[\d.,]+", text) else "text"
    name = pool.fields.answer
    if name is None:
        return None, "", None
    raw = _as_answer(get_path(record, name), name)
    if raw is not None and pool.answer_extract == "gsm8k":
        if "####" not in raw:
            raise RowError(name, f"field {name!r} has no '#### <answer>' line (answer_extract: gsm8k)")
        raw = raw.rsplit("####", 1)[1].strip().replace(",", "")
    return raw, "", None


def to_question(pool: PoolConfig, record: object, path: Path, line: int) -> Question:
    if not isinstance(record, dict):
        raise RowError(None, f"expected a JSON object, got {type(record).__name__}")
    if pool.question_template:
        try:
            text = _jinja.from_string(pool.question_template).render(**record).strip()
        except jinja2.UndefinedError as exc:
            raise RowError("question_template", f"question_template: {exc.message}") from exc
        except jinja2.TemplateError as exc:  # the sandbox refusing an attribute, a filter failing
            raise RowError("question_template", f"question_template: {type(exc).__name__}: {exc}") from exc
        if not text:
            raise RowError("question_template", "question_template rendered an empty question")
    else:
        text = _as_text(get_path(record, pool.fields.question), pool.fields.question, required=True)
    reference, suffix, record_answer_type = _reference(pool, record)
    text += suffix
    tests = None
    if pool.fields.tests:
        tests = get_path(record, pool.fields.tests)
        if tests is not None and (not isinstance(tests, list) or not all(isinstance(t, str) for t in tests)):
            raise RowError(pool.fields.tests, f"field {pool.fields.tests!r} must be a list of strings")
    domain = pool.domain
    if pool.fields.domain and isinstance(get_path(record, pool.fields.domain), str):
        domain = get_path(record, pool.fields.domain)
        if pool.domain_map is not None:
            if domain not in pool.domain_map:
                raise RowError(pool.fields.domain, f"domain value {domain!r} is not in the pool's domain_map")
            domain = pool.domain_map[domain]
    domain = (domain or "other").lower()
    if domain not in DOMAINS:
        raise RowError(pool.fields.domain or "domain", f"domain {domain!r} is not one of {DOMAINS}")
    subdomain = get_path(record, pool.fields.subdomain) if pool.fields.subdomain else None
    level = None
    if pool.fields.level:
        raw_level = get_path(record, pool.fields.level)
        if raw_level is not None:
            if isinstance(raw_level, bool) or not isinstance(raw_level, (int, float)):
                match = re.search(r"\d+(?:\.\d+)?", str(raw_level))  # "Level 3"
                if not match:
                    raise RowError(pool.fields.level, f"field {pool.fields.level!r} is not a number: {raw_level!r}")
                raw_level = float(match.group())
            level = min(1.0, max(0.0, float(raw_level) / (pool.level_max or 1.0)))
    answer_type = pool.answer_type or record_answer_type
    if answer_type is None:
        answer_type = "code" if tests else ("math" if reference is not None else None)
    return Question(
        question_id=question_id_for(text),
        source=pool.source or path.name,
        domain=domain,
        subdomain=str(subdomain) if subdomain is not None else None,
        text=text,
        reference_answer=reference,
        answer_type=answer_type if (reference is not None or tests) else None,
        tests=tests,
        level=level,
        pool_path=str(path),
        pool_line=line,
    )


def read_pool(pool: PoolConfig, base_dir: Path | None = None) -> PoolResult:
    path = Path(pool.path)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    result = PoolResult()
    if not path.exists():
        result.quarantine.append(QuarantineRow(pool_path=str(path), line=None, field=None, error="file not found"))
        return result
    try:
        records = iter_records(pool, path)
        for line, record, raw in records:
            try:
                if isinstance(record, RowError):
                    raise record
                result.questions.append(to_question(pool, record, path, line))
            except RowError as err:
                result.quarantine.append(
                    QuarantineRow(
                        pool_path=str(path), line=line, field=err.field, error=str(err), raw=(raw or None) and raw[:_RAW_PREVIEW]
                    )
                )
    except RowError as err:
        result.quarantine.append(QuarantineRow(pool_path=str(path), line=None, field=err.field, error=str(err)))
    return result
