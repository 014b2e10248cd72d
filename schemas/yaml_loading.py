"""Load YAML into a pydantic model; errors name the file, the line and the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config or rule file that cannot be used; the message says where and why."""


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a 1-based line."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                # The key itself is missing or unexpected: point at the mapping or the bad key.
                key = next((k for k, _ in node.value if getattr(k, "value", None) == part), None)
                return key.start_mark.line + 1 if key is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


class _DuplicateKey(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


def _no_duplicate_keys(node: yaml.Node | None) -> None:
    """YAML keeps the last of two equal keys silently; a config must not (one of them is a mistake)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key, value in node.value:
            name = getattr(key, "value", None)
            if isinstance(name, str) and name in seen:
                raise _DuplicateKey(key.start_mark.line + 1, f"key {name!r} appears twice (first on line {seen[name]})")
            seen[name] = key.start_mark.line + 1
            _no_duplicate_keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _no_duplicate_keys(item)


def load_yaml_model(path: str | Path, model: type[M],
                    checks: Callable[[M], list[tuple[tuple, str]]] | None = None) -> M:
    """`checks(loaded)`: more (location, message) errors, found by code that knows more than the
    model (e.g. the rules' Params); reported with file and line like the model's own."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start}); "
                          "save the file as UTF-8") from None
    try:
        root = yaml.compose(text)
        _no_duplicate_keys(root)
        data = yaml.safe_load(text)
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}:{exc.line}: invalid YAML: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping at the top level, got {type(data).__name__}")
    try:
        loaded = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_where(path, root, [(e["loc"], e["msg"]) for e in exc.errors()])) from exc
    errors = checks(loaded) if checks else []
    if errors:
        raise ConfigError(_where(path, root, errors))
    return loaded


def _where(path: Path, root: yaml.Node | None, errors: list[tuple[tuple, str]]) -> str:
    lines = []
    for loc, msg in errors:
        field = ".".join(str(p) for p in loc) or "(top level)"
        lines.append(f"{path}:{_line_of(root, loc) or '?'}: field {field!r}: {msg}")
    return "\n".join(lines)
