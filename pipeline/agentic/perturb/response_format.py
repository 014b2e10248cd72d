"""Rollout-time perturbation of what a tool returns: the observation's text format (JSON, YAML, a
table), extra irrelevant fields, key order, and one transient error before a success.

    choice = ResponseChoice.draw(seed)          # recorded in trajectory.perturbations
    text = render_observation(obs.as_dict(), choice, call_index)
    env = FlakyEnvironment(env, fail_at=choice.transient_error_at)

Everything is drawn from `random.Random(seed)`, and the per-call parts (extra field values, the
shuffled key order) from the seed and the call's index, so a stored seed rebuilds every text.
"""

from __future__ import annotations

import json
import random
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict

from pipeline.agentic.envs.base import Environment, Observation

Format = Literal["json", "json_compact", "yaml", "table"]
KeyOrder = Literal["original", "sorted", "shuffled"]
FORMATS: tuple[str, ...] = ("json", "json_compact", "yaml", "table")
KEY_ORDERS: tuple[str, ...] = ("original", "sorted", "shuffled")
MAX_EXTRA_FIELDS = 2       # extra irrelevant fields per observation: 0..this, uniformly
TRANSIENT_ERROR_CALLS = 3  # the failing call is one of the first this many, uniformly
TRANSIENT_ERROR = "temporarily unavailable (upstream timeout); retry the same call"
_EXTRA = [("request_id", lambda r: f"req-{r.randrange(16 ** 8):08x}"), ("latency_ms", lambda r: r.randrange(3, 900)),
          ("server", lambda r: f"tools-{r.randrange(1, 9)}.internal"), ("cached", lambda r: r.random() < 0.5),
          ("api_version", lambda r: r.choice(["v1", "v2", "2024-06-01"]))]


class ResponseChoice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int
    format: Format = "json"
    key_order: KeyOrder = "original"
    extra_fields: int = 0                    # how many irrelevant fields each observation gets
    transient_error_at: int | None = None    # 0-based index of the call that fails once, or None

    @classmethod
    def draw(cls, seed: int, formats=FORMATS, key_orders=KEY_ORDERS, max_extra: int = MAX_EXTRA_FIELDS,
             transient_error_rate: float = 0.3) -> "ResponseChoice":
        rng = random.Random(seed)
        return cls(seed=seed, format=rng.choice(formats), key_order=rng.choice(key_orders),
                   extra_fields=rng.randint(0, max_extra),
                   transient_error_at=(rng.randrange(TRANSIENT_ERROR_CALLS) if rng.random() < transient_error_rate
                                       else None))

    def record(self) -> dict:
        """The axes as trajectory.perturbations stores them."""
        return {"response_format": self.format, "key_order": self.key_order, "extra_fields": self.extra_fields,
                "transient_error_at": self.transient_error_at, "response_seed": self.seed}


def shape(value: Any, choice: ResponseChoice, call_index: int) -> Any:
    """The observation dict with extra fields and keys reordered (recursively), still data."""
    rng = random.Random(f"{choice.seed}:{call_index}")
    if isinstance(value, dict):
        value = dict(value)
        for key, make in rng.sample(_EXTRA, min(choice.extra_fields, len(_EXTRA))):
            value.setdefault(key, make(rng))
    return _order(value, choice.key_order, rng)


def _order(value: Any, how: str, rng: random.Random) -> Any:
    if isinstance(value, dict):
        keys = list(value)
        if how == "sorted":
            keys.sort()
        elif how == "shuffled":
            rng.shuffle(keys)
        return {k: _order(value[k], how, rng) for k in keys}
    if isinstance(value, list):
        return [_order(v, how, rng) for v in value]
    return value


def render_observation(observation: dict, choice: ResponseChoice, call_index: int) -> str:
    data = shape(observation, choice, call_index)
    if choice.format == "json":
        return json.dumps(data, ensure_ascii=False, indent=2)
    if choice.format == "json_compact":
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if choice.format == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip()
    return _table_text(data)


def _table_text(data: Any, indent: str = "") -> str:
    """Rows and columns as a text table; other data as `key: value` lines (nested by indent)."""
    if isinstance(data, dict) and isinstance(data.get("columns"), list) and isinstance(data.get("rows"), list):
        rest = {k: v for k, v in data.items() if k not in ("columns", "rows")}
        return _grid(data["columns"], data["rows"], indent) + ("\n" + _table_text(rest, indent) if rest else "")
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        columns = list(dict.fromkeys(k for r in data for k in r))
        return _grid(columns, [[r.get(c) for c in columns] for r in data], indent)
    if isinstance(data, dict):
        lines = []
        for key, value in data.items():
            if isinstance(value, (dict, list)) and value:
                lines.append(f"{indent}{key}:\n{_table_text(value, indent + '  ')}")
            else:
                lines.append(f"{indent}{key}: {_cell(value)}")
        return "\n".join(lines)
    if isinstance(data, list):
        return "\n".join(f"{indent}- {_cell(v)}" for v in data)
    return f"{indent}{_cell(data)}"


def _cell(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _grid(columns: list, rows: list, indent: str) -> str:
    cells = [[_cell(c) for c in columns]] + [[_cell(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    line = lambda r: indent + "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |"  # noqa: E731
    rule = indent + "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


class FlakyEnvironment:
    """An environment whose call number `fail_at` (0-based) fails once with a transient error;
    the same call made again then goes through. Everything else is the wrapped environment."""

    def __init__(self, env: Environment, fail_at: int | None):
        self.env, self.fail_at, self.calls = env, fail_at, 0

    def call(self, tool: str, arguments: Any) -> Observation:
        index = self.calls
        self.calls += 1
        if index == self.fail_at:
            return Observation("error", error=TRANSIENT_ERROR)
        return self.env.call(tool, arguments)

    def __getattr__(self, name):
        return getattr(self.env, name)
