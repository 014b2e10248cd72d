"""Render-time perturbation of how the tools are documented to the model: as JSON schema (the
OpenAI `tools` list), as Python signatures with docstrings, or as XML."""

from __future__ import annotations

import json
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from schemas.agentic import ToolSpec

ToolDocs = Literal["json_schema", "python", "xml"]
TOOL_DOCS: tuple[str, ...] = ("json_schema", "python", "xml")
_PY_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "object": "dict", "null": "None"}


def openai_tools(specs: list[ToolSpec]) -> list[dict]:
    """The OpenAI / vLLM `tools` request field (what chat templates render)."""
    return [{"type": "function", "function": {"name": s.name, "description": s.description,
                                              "parameters": s.parameters}} for s in specs]


def render_tool_docs(specs: list[ToolSpec], style: str) -> str:
    if style == "json_schema":
        return "\n".join(json.dumps(t, ensure_ascii=False) for t in openai_tools(specs))
    if style == "python":
        return "\n\n".join(_python(s) for s in specs)
    if style == "xml":
        return "<tools>\n" + "\n".join(_xml(s) for s in specs) + "\n</tools>"
    raise ValueError(f"unknown tool docs style {style!r}; known: {TOOL_DOCS}")


def _py_type(schema: dict) -> str:
    kind = schema.get("type")
    if kind == "array":
        return f"list[{_py_type(schema.get('items', {}))}]"
    return _PY_TYPES.get(kind, "Any") if isinstance(kind, str) else "Any"


def _python(spec: ToolSpec) -> str:
    props, required = spec.parameters.get("properties", {}), set(spec.parameters.get("required", []))
    args = [f"{n}: {_py_type(p)}" + ("" if n in required else " = None") for n, p in props.items()]
    args.sort(key=lambda a: "=" in a)  # parameters with defaults last, as Python requires
    lines = [f"def {spec.name}({', '.join(args)}) -> dict:", f'    """{spec.description}']
    described = [(n, p["description"]) for n, p in props.items() if p.get("description")]
    if described:
        lines += ["", "    Args:"] + [f"        {n}: {d}" for n, d in described]
    return "\n".join(lines + ['    """'])


def _xml(spec: ToolSpec) -> str:
    props, required = spec.parameters.get("properties", {}), set(spec.parameters.get("required", []))
    params = "".join(
        f'\n    <parameter name={quoteattr(n)} type={quoteattr(json.dumps(p.get("type", "any")).strip(chr(34)))} '
        f'required="{str(n in required).lower()}">{escape(p.get("description", ""))}</parameter>'
        for n, p in props.items())
    return (f"  <tool name={quoteattr(spec.name)}>\n    <description>{escape(spec.description)}</description>"
            f"{params}\n  </tool>")
