"""Benchmark sets for decontamination: the shipped ones (data/benchmarks/) and user files.

    index = build_index(files=[BenchmarkFileConfig(...), ...], shipped=True, base_dir=config_dir)
    index.match(question_text)              # -> filters.screening.decontam.Match | None
    index.match_answer(answer, question)    # generated answers

`load_benchmarks(...)` returns `BenchmarkItem`s (benchmark, item_id, text, kind) where kind
is "question" (what the benchmark asks; matched against questions and answers) or
"solution" (its reference solution text; matched against generated answers only). Shipped
(data/benchmarks/): math500 (problem + solution, id unique_id), aime24 (problem + solution,
id), amc23 (problem, id), gsm8k_test (question + rationale without the <<calculator>>
annotations, id = line number), humaneval (prompt + canonical_solution, id task_id).

An unreadable benchmark is never skipped: a missing file, a bad JSON line, a record without
the text field or a file with no items raises `BenchmarkError` naming the file (and line).
Decontaminating against a silently empty benchmark would report "clean" for everything.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from filters.screening.decontam import BenchmarkItem, DecisionRule, NgramIndex
from pipeline.pools import get_path
from schemas.config import BenchmarkFileConfig  # noqa: F401 - re-exported for callers

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BENCHMARK_DIR = PROJECT_ROOT / "data" / "benchmarks"


class BenchmarkError(ValueError):
    """A benchmark file that cannot be used; the message names the file."""


# --- the shipped benchmarks ------------------------------------------------------------------

_GSM8K_CALC = re.compile(r"<<[^<>]*>>")  # calculator annotations in GSM8K rationales


def _gsm8k_solution(answer: str) -> str:
    return _GSM8K_CALC.sub("", answer)


# name -> (file, id field or None for the line number, question field, solution field, solution cleaner)
SHIPPED: dict[str, tuple[str, str | None, str, str | None, object]] = {
    "math500": ("math500.jsonl", "unique_id", "problem", "solution", None),
    "aime24": ("aime24.jsonl", "id", "problem", "solution", None),
    "amc23": ("amc23.jsonl", "id", "problem", None, None),
    "gsm8k_test": ("gsm8k_test.jsonl", None, "question", "answer", _gsm8k_solution),
    "humaneval": ("humaneval.jsonl.gz", "task_id", "prompt", "canonical_solution", None),
}


# --- reading ---------------------------------------------------------------------------------


def _suffixes(path: Path) -> list[str]:
    return [s.lower() for s in path.suffixes[-2:]]


def _default_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".json", ".parquet", ".ndjson"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _records(path: Path, records_key: str | None) -> Iterator[tuple[int, dict]]:
    """(record number or line, record) of a benchmark file; BenchmarkError on anything bad."""
    if not path.is_file():
        raise BenchmarkError(f"benchmark file {path}: not found")
    suffixes = _suffixes(path)
    gz = suffixes[-1] == ".gz"
    kind = suffixes[-2] if gz and len(suffixes) > 1 else suffixes[-1]
    try:
        if kind == ".parquet" and not gz:
            import polars as pl

            for i, rec in enumerate(pl.read_parquet(path).iter_rows(named=True), start=1):
                yield i, rec
            return
        opener = gzip.open if gz else open
        with opener(path, "rt", encoding="utf-8") as handle:
            if kind in (".jsonl", ".ndjson"):
                for line_no, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise BenchmarkError(
                            f"benchmark file {path}, line {line_no}: invalid JSON ({exc.msg})") from exc
                    yield line_no, rec
                return
            if kind == ".json":
                try:
                    doc = json.load(handle)
                except json.JSONDecodeError as exc:
                    raise BenchmarkError(f"benchmark file {path}, line {exc.lineno}: invalid JSON ({exc.msg})") from exc
                if records_key is not None:
                    if not isinstance(doc, dict) or records_key not in doc:
                        raise BenchmarkError(f"benchmark file {path}: no key {records_key!r} holding the records")
                    doc = doc[records_key]
                if not isinstance(doc, list):
                    raise BenchmarkError(f"benchmark file {path}: expected a list of records, got {type(doc).__name__}"
                                         + ("" if records_key else " (set records_key for a JSON object)"))
                yield from enumerate(doc, start=1)
                return
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise BenchmarkError(f"benchmark file {path}: cannot read ({exc})") from exc
    except BenchmarkError:
        raise
    except Exception as exc:  # e.g. a corrupt parquet file
        raise BenchmarkError(f"benchmark file {path}: cannot read ({type(exc).__name__}: {exc})") from exc
    raise BenchmarkError(f"benchmark file {path}: unsupported format (use .jsonl, .json, .parquet, optionally .gz)")


def _read(path: Path, name: str, text_field: str, solution_field: str | None, id_field: str | None,
          records_key: str | None = None, clean_solution=None) -> list[BenchmarkItem]:
    items: list[BenchmarkItem] = []
    seen: set[str] = set()
    for num, rec in _records(path, records_key):
        where = f"benchmark file {path}, record {num}"
        if not isinstance(rec, dict):
            raise BenchmarkError(f"{where}: expected a JSON object, got {type(rec).__name__}")
        text = get_path(rec, text_field)
        if not isinstance(text, str) or not text.strip():
            got = ("is missing" if text is None else f"must be text, got {type(text).__name__}"
                   if not isinstance(text, str) else "is empty")
            raise BenchmarkError(f"{where}: text field {text_field!r} {got}")
        if id_field is None:
            item_id = str(num)
        else:
            raw_id = get_path(rec, id_field)
            if raw_id is None or isinstance(raw_id, (dict, list)):
                raise BenchmarkError(f"{where}: id field {id_field!r} is missing or not a scalar")
            item_id = str(raw_id)
        if item_id in seen:
            raise BenchmarkError(f"{where}: duplicate item id {item_id!r} in field {id_field!r}")
        seen.add(item_id)
        items.append(BenchmarkItem(name, item_id, text, "question"))
        if solution_field is not None:
            sol = get_path(rec, solution_field)
            if sol is not None and not isinstance(sol, str):
                raise BenchmarkError(
                    f"{where}: solution field {solution_field!r} must be text, got {type(sol).__name__}")
            if sol and sol.strip():
                items.append(BenchmarkItem(name, item_id, clean_solution(sol) if clean_solution else sol, "solution"))
    if not items:
        raise BenchmarkError(f"benchmark file {path}: no items")
    if solution_field is not None and not any(i.kind == "solution" for i in items):
        raise BenchmarkError(f"benchmark file {path}: no record has the solution field {solution_field!r}")
    return items


def load_shipped(names: Sequence[str] | None = None, directory: Path = BENCHMARK_DIR) -> list[BenchmarkItem]:
    """Items of the shipped benchmarks (all of them by default)."""
    names = list(SHIPPED) if names is None else list(names)
    unknown = [n for n in names if n not in SHIPPED]
    if unknown:
        raise BenchmarkError(f"unknown shipped benchmark(s) {unknown}; shipped: {list(SHIPPED)}")
    items: list[BenchmarkItem] = []
    for name in names:
        file, id_field, text_field, solution_field, clean = SHIPPED[name]
        items += _read(directory / file, name, text_field, solution_field, id_field, clean_solution=clean)
    return items


def load_benchmark_file(cfg: BenchmarkFileConfig, base_dir: Path | None = None) -> list[BenchmarkItem]:
    """Items of one user-provided benchmark file (relative paths against base_dir)."""
    path = Path(cfg.path)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return _read(path, cfg.name or _default_name(path), cfg.text_field, cfg.solution_field, cfg.id_field,
                 cfg.records_key)


def load_benchmarks(files: Sequence[BenchmarkFileConfig] = (), shipped: bool | Sequence[str] = True,
                    base_dir: Path | None = None) -> list[BenchmarkItem]:
    """Shipped benchmarks (True: all, False: none, or a list of names) plus user files.

    A user benchmark named like a shipped one (or another user file) is an error: verdicts
    name the benchmark, so names must be unique.
    """
    items = load_shipped(None if shipped is True else ([] if shipped is False else shipped))
    names = {i.benchmark for i in items}
    for cfg in files:
        extra = load_benchmark_file(cfg, base_dir)
        name = extra[0].benchmark
        if name in names:
            raise BenchmarkError(f"benchmark file {cfg.path}: benchmark name {name!r} is already used; set `name`")
        names.add(name)
        items += extra
    return items


def build_index(files: Sequence[BenchmarkFileConfig] = (), shipped: bool | Sequence[str] = True,
                base_dir: Path | None = None, decision: DecisionRule = DecisionRule()) -> NgramIndex:
    """Load the benchmarks and build the n-gram index (about 0.5 s for the shipped ones).
    No benchmark at all is an error too: checking against nothing would pass everything."""
    items = load_benchmarks(files, shipped, base_dir)
    if not items:
        raise BenchmarkError("no benchmark items: enable the shipped benchmarks or add benchmark files")
    return NgramIndex(items, decision)


def index_for(config) -> NgramIndex:
    """The index of a run config's benchmarks (decontamination.shipped and .benchmarks)."""
    d = config.decontamination
    return build_index(d.benchmarks, shipped=d.shipped)
