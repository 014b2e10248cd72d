"""The environment contract: versioned tools described by JSON schema, and a hashable state.

    env = make("shop_db@1")
    obs = env.call("query", {"sql": "SELECT count(*) FROM customers"})
    obs.status   # ok | error | timeout
    obs.content  # a JSON value (rows, stdout, a sympy result as text) or None
    obs.error    # what went wrong, in words the model can act on

`call` never raises for anything the model did: an unknown tool, arguments failing the tool's
schema, a tool error or a timeout are all observations. A rollout renders the observation for
the model (pipeline/agentic/perturb/response_format.py) and stores its status on the tool turn.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import jsonschema

from schemas.agentic import ToolSpec


@dataclass(frozen=True)
class Observation:
    status: str                # ok | error | timeout
    content: Any = None        # JSON value
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict:
        """The observation as the model sees it, before any format perturbation."""
        if self.ok:
            return {"result": self.content}
        return {"error": self.error} | ({"partial": self.content} if self.content not in (None, "", {}) else {})


class ToolError(Exception):
    """Raised inside a tool for a failure the model should see (bad SQL, a parse error)."""


class Environment:
    """A tool environment. Subclasses set name, version, tools, and a handler method per tool,
    `tool_<name>(**arguments) -> JSON value`, raising ToolError for failures the model should see."""

    name: ClassVar[str]
    version: ClassVar[int]
    tools: ClassVar[list[ToolSpec]]

    @classmethod
    def ref(cls) -> str:
        return f"{cls.name}@{cls.version}"

    def tool_specs(self, allowed: list[str] | None = None) -> list[ToolSpec]:
        return [t for t in self.tools if allowed is None or t.name in allowed]

    def call(self, tool: str, arguments: Any) -> Observation:
        spec = next((t for t in self.tools if t.name == tool), None)
        if spec is None:
            return Observation("error", error=f"unknown tool {tool!r}; tools: {[t.name for t in self.tools]}")
        problem = argument_error(spec, arguments)
        if problem:
            return Observation("error", error=f"bad arguments for {tool}: {problem}")
        handler: Callable[..., Any] = getattr(self, f"tool_{tool}")
        try:
            return self._observe(handler, arguments)
        except ToolError as exc:
            return Observation("error", error=str(exc))

    def _observe(self, handler: Callable[..., Any], arguments: dict) -> Observation:
        """Run one handler; subclasses with their own timeouts override this."""
        return Observation("ok", content=handler(**arguments))

    def state_hash(self) -> str:
        """What later calls depend on. Stateless environments hash their name@version."""
        return hashlib.sha256(self.ref().encode()).hexdigest()[:16]

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def argument_error(spec: ToolSpec, arguments: Any) -> str | None:
    """None if the arguments fit the tool's JSON schema, else the first problem, with its path."""
    validator = jsonschema.Draft202012Validator(spec.parameters)
    error = next(iter(sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.path)
    return f"{where + ': ' if where else ''}{error.message}"


def tool(name: str, description: str, properties: dict, required: list[str] | None = None) -> ToolSpec:
    """A ToolSpec whose parameters allow no keys beyond `properties`."""
    return ToolSpec(name=name, description=description,
                    parameters={"type": "object", "properties": properties,
                                "required": list(properties) if required is None else required,
                                "additionalProperties": False})
