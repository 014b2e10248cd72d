"""Bad cases in and out of the store: from a JSONL file (every line checked first, errors as
FILE:LINE: field, nothing written unless all lines are good) or one case from the command line.
Adding a case again changes nothing (the id is a hash of prompt and output)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from pydantic import ValidationError

from pipeline.store import Store, now
from schemas import rows
from schemas.bad_case import BadCase
from schemas.yaml_loading import ConfigError


def read_cases(path: str | Path) -> list[tuple[BadCase, str]]:
    """(case, "FILE:LINE") per non-blank line; ConfigError listing every bad line otherwise."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte at offset {exc.start}); save the file as UTF-8") from None
    cases, errors = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            errors.append(f"{path}:{number}: invalid JSON: {getattr(exc, 'msg', exc)}")
            continue
        if not isinstance(data, dict):
            errors.append(f"{path}:{number}: expected a JSON object with prompt and bad_output")
            continue
        try:
            cases.append((BadCase.model_validate(data), f"{path}:{number}"))
        except ValidationError as exc:
            errors += [f"{path}:{number}: field '{'.'.join(map(str, e['loc'])) or '?'}': {e['msg']}" for e in exc.errors()]
    if errors:
        raise ConfigError("\n".join(errors[:20]) + (f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""))
    if not cases:
        raise ConfigError(f"{path}: no cases in the file")
    return cases


def add_cases(store: Store, cases: list[tuple[BadCase, str]]) -> list[str]:
    """Store the cases (those already there stay as they were); their ids, in order."""
    at = now()
    frame = pl.DataFrame([{"case_id": c.case_id, "prompt": c.prompt, "bad_output": c.bad_output,
                           "expected": c.expected, "tags": c.tags, "model": c.model, "source": source,
                           "created_at": at} for c, source in cases], schema=rows.BAD_CASE)
    store.insert("bad_cases", frame.unique("case_id", keep="first", maintain_order=True))
    return [c.case_id for c, _ in cases]


def load_case(store: Store, case_id: str) -> BadCase:
    """A stored case by id (or a unique id prefix)."""
    found = store.frame("SELECT prompt, bad_output, expected, tags, model FROM bad_cases "
                        "WHERE starts_with(case_id, ?) ORDER BY case_id LIMIT 2", [case_id])
    if found.height != 1:
        what = "no bad case" if found.is_empty() else "more than one bad case"
        raise KeyError(f"{what} with id {case_id!r} (see `curate badcases list`)")
    return BadCase.model_validate(found.row(0, named=True))

