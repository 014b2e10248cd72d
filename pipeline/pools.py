"""Read question pools into `Question`s; bad rows go to quarantine with file, line and field.

The files' formats are read in pipeline/pool_readers.py; here each record becomes a Question or
a quarantine row. Every text a question takes is checked (UTF-8, length, finite numbers), so
one bad row never stops the rows after it, and a file that cannot be read is one error.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pydantic
from jinja2.sandbox import ImmutableSandboxedEnvironment

from pipeline.pool_readers import PoolUnreadable, RowError, open_records
from schemas.config import PoolConfig
from schemas.question import DOMAINS, Question, QuarantineRow, question_id_for

_RAW_PREVIEW = 500
# Sandboxed: a config's template reaches no Python object; record values are never evaluated.
_jinja = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
# Compiled once per template, not once per record (compiling was most of a pool's read time).
_template = functools.lru_cache(maxsize=64)(_jinja.from_string)


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


@dataclass
class PoolResult:
    questions: list[Question] = field(default_factory=list)
    quarantine: list[QuarantineRow] = field(default_factory=list)
    error: str | None = None  # the file could not be read (also one quarantine row)
    notes: list[str] = field(default_factory=list)  # worth saying, nothing lost (an empty file)


# --- mapping one record to a Question --------------------------------------------------


def get_path(record: dict, dotted: str):
    """record["a"]["b"] for "a.b"; None when any part is missing."""
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _utf8(text: str, field: str | None) -> str:
    """`text` if it can be stored; a lone surrogate (a JSON "\\ud800" escape, or a byte that was
    not UTF-8 in a .json file) cannot be encoded, hashed or written to DuckDB."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RowError(field, f"field {field!r} holds {text[exc.start]!r} at character {exc.start + 1}: "
                              "a lone surrogate or a byte that is not UTF-8") from None
    return text


def _scalar_text(value, field: str) -> str:
    """A string or a finite number as text (a boolean is not a number here)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise RowError(field, f"field {field!r} is {value!r}, not a finite number")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RowError(field, f"field {field!r} must be a string or a number, got {type(value).__name__}")
    return _utf8(str(value), field)


def _as_text(value, field: str, required: bool) -> str | None:
    if value is None:
        if required:
            raise RowError(field, f"missing required field {field!r}")
        return None
    text = _scalar_text(value, field).strip()
    if required and not text:
        raise RowError(field, f"field {field!r} is empty")
    return text or None


def _as_answer(value, field: str) -> str | None:
    """References may be text, numbers, booleans or lists of those (TheoremQA has all four:
    its 115 True/False answers are JSON booleans, checked as "True"/"False" by answer_match).
    NaN and Infinity are no reference: quarantined, not stringified."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        if not all(isinstance(v, (str, int, float)) for v in value):
            raise RowError(field, f"field {field!r} must be text, a number, a boolean or a list of those")
        for v in value:
            if not isinstance(v, bool):
                _scalar_text(v, field)  # finite and encodable
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


def _question_text(pool: PoolConfig, record: dict) -> str:
    if not pool.question_template:
        return _as_text(get_path(record, pool.fields.question), pool.fields.question, required=True)
    try:
        text = _template(pool.question_template).render(**record).strip()
    except jinja2.UndefinedError as exc:
        raise RowError("question_template", f"question_template: {exc.message}") from exc
    except jinja2.TemplateError as exc:  # the sandbox refusing an attribute, a filter failing
        raise RowError("question_template", f"question_template: {type(exc).__name__}: {exc}") from exc
    if not text:
        raise RowError("question_template", "question_template rendered an empty question")
    return _utf8(text, "question_template")


def _domain(pool: PoolConfig, record: dict) -> str:
    domain = pool.domain
    value = get_path(record, pool.fields.domain) if pool.fields.domain else None
    if value is not None:
        if not isinstance(value, str):  # a numeric label means nothing without a domain_map of names
            raise RowError(pool.fields.domain, f"field {pool.fields.domain!r} must name a domain, "
                                               f"got {type(value).__name__} {value!r}")
        domain = value
        if pool.domain_map is not None:
            if domain not in pool.domain_map:
                raise RowError(pool.fields.domain, f"domain value {domain!r} is not in the pool's domain_map")
            domain = pool.domain_map[domain]
    domain = (domain or "other").lower()
    if domain not in DOMAINS:
        raise RowError(pool.fields.domain or "domain", f"domain {domain!r} is not one of {DOMAINS}")
    return domain


def _level(pool: PoolConfig, record: dict) -> float | None:
    raw = get_path(record, pool.fields.level) if pool.fields.level else None
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        match = re.search(r"\d+(?:\.\d+)?", str(raw))  # "Level 3"
        if not match:
            raise RowError(pool.fields.level, f"field {pool.fields.level!r} is not a number: {raw!r}")
        raw = float(match.group())
    if not math.isfinite(raw):
        raise RowError(pool.fields.level, f"field {pool.fields.level!r} is {raw!r}, not a finite number")
    return min(1.0, max(0.0, float(raw) / (pool.level_max or 1.0)))


def _tests(pool: PoolConfig, record: dict) -> list[str] | None:
    tests = get_path(record, pool.fields.tests) if pool.fields.tests else None
    if tests is not None and (not isinstance(tests, list) or not all(isinstance(t, str) for t in tests)):
        raise RowError(pool.fields.tests, f"field {pool.fields.tests!r} must be a list of strings")
    return tests and [_utf8(t, pool.fields.tests) for t in tests]


def to_question(pool: PoolConfig, record: object, path: Path, line: int) -> Question:
    if not isinstance(record, dict):
        raise RowError(None, f"expected a JSON object, got {type(record).__name__}")
    text = _question_text(pool, record)
    reference, suffix, record_answer_type = _reference(pool, record)
    text += suffix
    if len(text) > pool.max_question_chars:
        raise RowError(pool.fields.question if not pool.question_template else "question_template",
                       f"question of {len(text):,} characters, over max_question_chars ({pool.max_question_chars:,})")
    tests = _tests(pool, record)
    subdomain = _as_text(get_path(record, pool.fields.subdomain), pool.fields.subdomain, required=False) \
        if pool.fields.subdomain else None
    answer_type = pool.answer_type or record_answer_type
    if answer_type is None:
        answer_type = "code" if tests else ("math" if reference is not None else None)
    try:
        return Question(
            question_id=question_id_for(text),
            source=pool.source or _printable(path.name),
            domain=_domain(pool, record),
            subdomain=subdomain,
            text=text,
            reference_answer=reference,
            answer_type=answer_type if (reference is not None or tests) else None,
            tests=tests,
            level=_level(pool, record),
            pool_path=_printable(str(path)),
            pool_line=line,
        )
    except pydantic.ValidationError as exc:
        raise RowError(None, f"not a valid question: {exc.errors()[0]['msg']}") from None


def _printable(text: str) -> str:
    """Text DuckDB can store: a lone surrogate (from a file name or a bad byte) as a \\udcxx escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _quarantined(path: str, line: int | None, field: str | None, error: str, raw: str | None) -> QuarantineRow:
    preview = _printable(raw[:_RAW_PREVIEW]) if raw else None
    return QuarantineRow(pool_path=path, line=line, field=field and _printable(field), error=_printable(error),
                         raw=preview)


def read_pool(pool: PoolConfig, base_dir: Path | None = None) -> PoolResult:
    """Every row of the pool as a question or a quarantine row; a file that cannot be read is
    `error` (and one quarantine row), never an exception."""
    path = Path(pool.path)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    result, shown, rows = PoolResult(), _printable(str(path)), 0
    try:
        for line, record, raw in open_records(pool, path, result.notes):
            rows += 1
            try:
                if isinstance(record, RowError):
                    raise record
                result.questions.append(to_question(pool, record, path, line))
            except RowError as err:
                result.quarantine.append(_quarantined(shown, line, err.field, str(err), raw))
            except Exception as exc:  # a mapping bug costs one row, not the run; the type says where to look
                error = f"unexpected {type(exc).__name__}: {exc}"
                result.quarantine.append(_quarantined(shown, line, None, error, raw))
    except PoolUnreadable as err:
        result.error = f"{shown}: {_printable(str(err))}"
        result.quarantine.append(_quarantined(shown, err.line, err.field, str(err), None))
    except Exception as exc:  # a reader library failing in a way not foreseen: still this pool's error only
        message = f"cannot read the file: {type(exc).__name__}: {exc}"
        result.error = f"{shown}: {_printable(message)}"
        result.quarantine.append(_quarantined(shown, None, None, message, None))
    if rows == 0 and result.error is None:
        result.notes.append(f"{shown}: no rows in the file")
    return result


def pool_problem(pool: PoolConfig) -> str | None:
    """Why the pool cannot be read at all, found without reading its rows (the CLI checks every
    pool before a run starts); None when it opens."""
    try:
        open_records(pool, Path(pool.path), [])
    except PoolUnreadable as err:
        return f"{_printable(pool.path)}: {_printable(str(err))}"
    except Exception as exc:
        return f"{_printable(pool.path)}: cannot read the file: {type(exc).__name__}: {_printable(str(exc))}"
    return None
