"""Rules by name: a rule class registers itself with @register; the run config names rules
only to set their parameters (`filters.<name>: {...}`) or to disable them.

The rules in filters/ are found by importing the modules that use @register (so a new rule is
one file here); rules elsewhere are listed in `filters.modules` and imported by name.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from filters.base import SampleFilter

_RULES: dict[str, type[SampleFilter]] = {}
_FOUND = False


def register(cls: type[SampleFilter]) -> type[SampleFilter]:
    """Class decorator: make the rule known by its name."""
    known = _RULES.get(cls.name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"rule name {cls.name!r} is taken by {known.__module__}.{known.__qualname__}")
    _RULES[cls.name] = cls
    return cls


def _find_builtin() -> None:
    """Import the modules of filters/ that register rules (read first, so helpers such as the
    datatrove adapter are not imported for nothing)."""
    global _FOUND
    if _FOUND:
        return
    package = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(package)]), key=lambda i: i.name):
        if not info.ispkg and "@register" in (package / f"{info.name}.py").read_text(encoding="utf-8"):
            importlib.import_module(f"filters.{info.name}")
    _FOUND = True


_BUILTIN = ("filters.", "pipeline.rules.")  # modules whose rules every run has


def registered(modules: Iterable[str] = ()) -> dict[str, type[SampleFilter]]:
    """The rule classes a run has, by name: the built-in ones and those of `modules` (a module
    imported for another config does not add its rules to this one)."""
    _find_builtin()
    modules = list(modules)
    for module in modules:
        importlib.import_module(module)
    return {name: cls for name, cls in _RULES.items()
            if cls.__module__.startswith(_BUILTIN) or cls.__module__ in modules}


def build_rules(config, stage: str, extra: Iterable[SampleFilter] = ()) -> list[SampleFilter]:
    """The rules of one verdict pass (filter, decontam, verify) as the run config
    (schemas.config.CurateConfig) sets them, minus `filters.disabled`; `extra`: rules built from
    run state rather than config (the benchmark index's decontam_answer)."""
    cfg = config.filters
    rules = [cls.from_config(config) for cls in registered(cfg.modules).values() if cls.stage == stage]
    if stage == "filter" and cfg.datatrove:
        from filters.datatrove_adapter import FromDatatrove

        rules += [FromDatatrove.from_config(d) for d in cfg.datatrove]
    rules += list(extra)
    return [r for r in rules if r.name not in cfg.disabled]


def config_errors(config, also_known: Iterable[str] = ()) -> list[tuple[tuple, str]]:
    """(location, message) for every rule setting of `filters` that no rule accepts: an unknown
    rule name, a parameter its Params model rejects, a module that cannot be imported."""
    cfg = config.filters
    errors: list[tuple[tuple, str]] = []
    try:
        rules = registered(cfg.modules)
    except ImportError as exc:
        return [(("filters", "modules"), f"cannot import a rule module: {exc}")]
    known = sorted({*rules, *(d.rule_name() for d in cfg.datatrove), *also_known})
    for name, value in (cfg.model_extra or {}).items():
        if name not in rules:
            errors.append((("filters", name), f"no rule is named {name!r}; known: {known}"))
            continue
        params = rules[name].Params
        try:
            params.model_validate(value if value is not None else {})
        except ValidationError as exc:
            errors += [(("filters", name, *e["loc"]), e["msg"]) for e in exc.errors()]
            continue
        if isinstance(value, dict) and "root" not in params.model_fields:
            # Strict even for a Params model that allows extra keys: a typo never becomes a default.
            errors += [(("filters", name, key), f"not a parameter of {name}; known: {sorted(params.model_fields)}")
                       for key in value if key not in params.model_fields]
    unknown = [n for n in cfg.disabled if n not in known]
    if unknown:
        errors.append((("filters", "disabled"), f"names unknown rules {sorted(unknown)}; known: {known}"))
    return errors
