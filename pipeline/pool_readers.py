"""The raw records of one pool file, each with its line: (line, record or RowError, raw text).

Formats: JSON lines (.jsonl, .ndjson), one JSON document (.json), either gzipped (.gz), Parquet,
and a local HF `datasets` folder. A record that cannot be decoded (invalid JSON, bytes that are
not UTF-8, a duplicate key, nesting too deep for the parser, an integer too long to convert)
comes as a RowError in its place, so the caller quarantines that row and reads on. A file that
cannot be read at all raises PoolUnreadable; `open_records` raises it for everything it can
see without reading the rows, so a run can refuse a bad pool before any work starts.

JSON is parsed with the standard library, record by record, because polars' ndjson reader
rejects a whole file for one bad line and reports no line number.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from schemas.config import PoolConfig

Records = Iterator[tuple[int, object, str]]
_BOM = "\ufeff"


class RowError(ValueError):
    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field


class PoolUnreadable(RowError):
    """A pool file with no readable rows: missing, a folder that is not a dataset, not gzip,
    not Parquet, Parquet without the question's column, a JSON document that does not parse."""

    def __init__(self, field: str | None, message: str, line: int | None = None):
        super().__init__(field, message)
        self.line = line


class _SeveralValues(PoolUnreadable):
    """A .json file holding one value after another: JSON lines under the wrong name."""


# --- strict JSON: what the standard parser would silently accept or crash on --------------------


class _LongInteger:
    """An integer literal longer than Python converts (sys.get_int_max_str_digits)."""

    def __init__(self, digits: int):
        self.digits = digits


def _parse_int(literal: str):
    limit = sys.get_int_max_str_digits()
    digits = len(literal.lstrip("-"))
    return _LongInteger(digits) if limit and digits > limit else int(literal)


def _checked_object(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are unique and whose values hold no over-long integer."""
    record: dict = {}
    for key, value in pairs:
        if key in record:
            raise RowError(key, f"duplicate key {key!r} in one JSON object")
        for item in value if isinstance(value, list) else (value,):
            if isinstance(item, _LongInteger):
                raise RowError(key, f"field {key!r} holds an integer of {item.digits} digits "
                                    f"(more than the {sys.get_int_max_str_digits()} Python converts)")
        record[key] = value
    return record


_strict = json.JSONDecoder(object_pairs_hook=_checked_object, parse_int=_parse_int)


def decode_record(text: str, pos: int = 0) -> tuple[object, int]:
    """One JSON value from `text` at `pos` and where it ends; a RowError when it cannot be a row."""
    try:
        return _strict.raw_decode(text, pos)
    except RowError:
        raise
    except json.JSONDecodeError as exc:
        raise RowError(None, f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise RowError(None, "JSON nested too deeply for the parser (thousands of levels)") from None


# --- reading bytes ----------------------------------------------------------------------------


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _base_suffix(path: Path) -> str:
    """The format's suffix, under a .gz if there is one: data.jsonl.gz -> .jsonl."""
    name = path.name.lower().removesuffix(".gz")
    return Path(name).suffix


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if _is_gzip(path) else path.open("rb")


def _read_bytes(path: Path) -> bytes:
    try:
        with _open_bytes(path) as handle:
            return handle.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError; a cut gzip an EOFError
        raise PoolUnreadable(None, f"cannot read the file: {exc}") from None


def _first_char(path: Path) -> str:
    """The first non-blank character (after a BOM), or "" for an empty file; checks a gzip header."""
    try:
        with _open_bytes(path) as handle:
            head = handle.read(4096)
    except (OSError, EOFError) as exc:
        raise PoolUnreadable(None, f"cannot read the file: {exc}") from None
    return head.decode("utf-8", "replace").lstrip(_BOM + " \t\r\n")[:1]


# --- JSON lines ------------------------------------------------------------------------------


def _iter_jsonl(path: Path) -> Records:
    line_no = 0
    try:
        with _open_bytes(path) as handle:
            for line_no, data in enumerate(handle, start=1):
                if line_no == 1 and data.startswith(b"\xef\xbb\xbf"):
                    data = data[3:]  # a UTF-8 byte order mark (Windows editors write one)
                try:
                    line = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    byte, column = data[exc.start], exc.start + 1
                    error = RowError("encoding", f"line is not UTF-8: byte 0x{byte:02x} at column {column}")
                    yield line_no, error, data.decode("utf-8", "backslashreplace")
                    continue
                if not line.strip():
                    continue
                try:
                    record, end = decode_record(line, len(line) - len(line.lstrip()))
                    if line[end:].strip():
                        raise RowError(None, f"invalid JSON: extra data at column {end + 1}")
                    yield line_no, record, line
                except RowError as err:
                    yield line_no, err, line
    except (OSError, EOFError) as exc:  # a gzip file cut short: the rows before it are kept
        raise PoolUnreadable(None, f"cannot read past line {line_no}: {exc}", line_no + 1) from None


# --- one JSON document ------------------------------------------------------------------------


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


def _iter_json(path: Path, records_key: str | None) -> Records:
    """Each record of a top-level array (or `records_key` array) with the line it starts on.

    Bytes that are not UTF-8 are kept as surrogate escapes: the record that holds them is
    quarantined naming its field (pools.py checks every text it takes), the others are read.
    """
    text = _read_bytes(path).decode("utf-8", "surrogateescape").removeprefix(_BOM)
    if not text.strip():
        return
    try:
        doc = json.loads(text, parse_int=_parse_int)  # duplicate keys are checked per record below
    except json.JSONDecodeError as exc:
        kind = _SeveralValues if exc.msg == "Extra data" else PoolUnreadable
        raise kind(None, f"invalid JSON: {exc.msg} at column {exc.colno}", exc.lineno) from None
    except RecursionError:
        raise PoolUnreadable(None, "JSON nested too deeply for the parser (thousands of levels)") from None
    if records_key is not None:
        if not isinstance(doc, dict) or records_key not in doc:
            raise PoolUnreadable(records_key, f"no key {records_key!r} holding the records", 1)
        meta = {k: v for k, v in doc.items() if not isinstance(v, (list, dict, _LongInteger))}
        doc = doc[records_key]
        if isinstance(doc, list):  # top-level scalars (e.g. BIG-bench task_prefix) for templates
            doc = [dict(r, pool_meta=meta) if isinstance(r, dict) else r for r in doc]
        start = _top_level_array_start(text, records_key)
    else:
        start = text.index("[") + 1 if isinstance(doc, list) else None
    if not isinstance(doc, list):
        raise PoolUnreadable(records_key, f"expected a list of records, got {type(doc).__name__}", 1)
    if start is None:  # cannot locate the array: fall back to record numbers
        for i, rec in enumerate(doc, start=1):
            yield i, rec, ""
        return
    pos, line = start, text.count("\n", 0, start) + 1
    ws = re.compile(r"[\s,]*")
    for rec in doc:
        skip = ws.match(text, pos).end()
        line += text.count("\n", pos, skip)
        try:
            _, end = decode_record(text, skip)  # again, strictly: duplicate keys, long integers
        except RowError as err:
            end = json.JSONDecoder(parse_int=_parse_int).raw_decode(text, skip)[1]
            rec = err
        yield line, rec, text[skip:end]
        line += text.count("\n", skip, end)
        pos = end


# --- columnar files: the schema is checked before any row ------------------------------------


def _required_columns(pool: PoolConfig) -> list[tuple[str, str]]:
    """(config key, top-level column) the pool cannot do without."""
    if pool.question_template:  # its variables are known only when a row is rendered
        return []
    return [("fields.question", pool.fields.question.split(".")[0])]


def _check_columns(pool: PoolConfig, columns: list[str]) -> None:
    for key, column in _required_columns(pool):
        if column not in columns:
            raise PoolUnreadable(key.split(".")[-1], f"no column {column!r} for {key} "
                                                     f"(columns: {', '.join(columns) or 'none'})")


def _parquet(pool: PoolConfig, path: Path) -> Records:
    import polars as pl

    try:
        _check_columns(pool, list(pl.read_parquet_schema(path)))
    except PoolUnreadable:
        raise
    except Exception as exc:  # polars raises several kinds for a file that is not Parquet
        raise PoolUnreadable(None, f"not a readable Parquet file: {exc}") from None

    def rows() -> Records:
        try:
            frame = pl.read_parquet(path)
        except Exception as exc:
            raise PoolUnreadable(None, f"not a readable Parquet file: {exc}") from None
        for i, rec in enumerate(frame.iter_rows(named=True), start=1):
            yield i, rec, ""

    return rows()


def _hf_folder(pool: PoolConfig, path: Path) -> Records:
    import datasets

    try:
        data = datasets.load_from_disk(str(path))  # memory-mapped: cheap to open
    except Exception as exc:
        raise PoolUnreadable(None, "a folder, but not a Hugging Face datasets folder (one written by "
                                   f"save_to_disk): {exc}") from None
    if isinstance(data, datasets.DatasetDict):
        name = pool.split or ("train" if "train" in data else next(iter(data)))
        if name not in data:
            raise PoolUnreadable("split", f"split {name!r} not in {list(data)}")
        data = data[name]
    _check_columns(pool, data.column_names)
    return ((i, rec, "") for i, rec in enumerate(data, start=1))


def _document_or_lines(path: Path, notes: list[str], fallback_on: type[PoolUnreadable], named: str) -> Records:
    """The file read as one JSON array, or as JSON lines when that fails with `fallback_on`; a
    note when the content is not what its name (`named`: "lines" or "document") says. The
    document is parsed whole before its first record is yielded, so no record comes twice."""
    try:
        records = list(_iter_json(path, None))
    except fallback_on:
        if named == "document":
            notes.append(f"{path}: JSON lines, not one JSON document; read as lines")
        yield from _iter_jsonl(path)
        return
    if named == "lines":
        notes.append(f"{path}: a JSON array, not JSON lines; read as one")
    yield from records


def open_records(pool: PoolConfig, path: Path, notes: list[str]) -> Records:
    """The pool's records; raises PoolUnreadable now for every problem visible without reading
    the rows. `notes` gets what the user should know but that loses nothing."""
    if not path.exists():
        raise PoolUnreadable(None, "file not found")
    if path.is_dir():
        return _hf_folder(pool, path)
    suffix = _base_suffix(path)
    if suffix in (".jsonl", ".ndjson"):
        if _first_char(path) == "[":  # a JSON array saved as .jsonl, or JSON lines whose first row is an array
            return _document_or_lines(path, notes, PoolUnreadable, named="lines")
        return _iter_jsonl(path)
    if suffix == ".json":
        _first_char(path)  # a .json.gz that is not gzip fails here
        if pool.records_key is None:  # JSON lines saved as .json are read as lines
            return _document_or_lines(path, notes, _SeveralValues, named="document")
        return _iter_json(path, pool.records_key)
    if suffix == ".parquet" and not _is_gzip(path):
        return _parquet(pool, path)
    kind = suffix + (".gz" if _is_gzip(path) else "")
    raise PoolUnreadable(None, f"unsupported pool format {kind or path.name!r} (use .jsonl, .json, either "
                               "optionally gzipped, .parquet or an HF datasets folder)")
