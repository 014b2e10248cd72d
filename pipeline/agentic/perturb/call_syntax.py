"""Tool-call syntaxes: how calls are written in a model's text, each with its renderer and parser.

    text = render_calls("hermes", calls, content="Let me check.")
    content, calls = parse_calls("hermes", text, specs)   # the same calls back

  openai_json  {"tool_calls": [{"type": "function", "function": {"name": ..., "arguments": "<JSON>"}}]}
  hermes       <tool_call>{"name": ..., "arguments": {...}}</tool_call>, one block per call
               (what Qwen2.5's chat template writes and vLLM's `hermes` tool parser reads); with no
               tags in the text, a bare {"name": <a tool>, "arguments": {...}} object (or {{...}},
               as Qwen2.5's template shows it) is read as a call
  xml_invoke   <invoke name="..."><parameter name="...">value</parameter></invoke> blocks; a string
               value is written raw, anything else as JSON; parsing reads each value by its
               parameter's schema type (so the specs are needed for exact round trips)
  pythonic     [name(arg='value', n=3), other()] (Python literals; parsed with ast.literal_eval,
               never eval)

A parser never raises on model text: a call it cannot read comes back as a ToolCall with its
raw text and parse_error (the unparsable_call trace rule fails it). Parsed calls get ids
call_0, call_1, ... in order (the rollout may replace them).
"""

from __future__ import annotations

import ast
import json
import re
from typing import Literal

from schemas.agentic import ToolCall, ToolSpec

CallSyntax = Literal["openai_json", "hermes", "xml_invoke", "pythonic"]
CALL_SYNTAXES: tuple[str, ...] = ("openai_json", "hermes", "xml_invoke", "pythonic")


def render_calls(syntax: str, calls: list[ToolCall], content: str | None = None) -> str:
    block = {"openai_json": _render_openai, "hermes": _render_hermes, "xml_invoke": _render_xml,
             "pythonic": _render_pythonic}[syntax](calls) if calls else ""
    return "\n\n".join(p for p in ((content or "").strip(), block) if p)


def parse_calls(syntax: str, text: str, specs: list[ToolSpec] | None = None,
                stop_after_calls: bool = False) -> tuple[str, list[ToolCall]]:
    """(the content without the calls, the calls) from a model's text. stop_after_calls (hermes):
    the text after the last call is dropped, as a stop sequence at the call's end would have (a
    small model writes on: a guessed 'Final answer:' before it has seen the result)."""
    if stop_after_calls:
        text = cut_after_calls(syntax, text, specs)
    parser = {"openai_json": _parse_openai, "hermes": _parse_hermes, "xml_invoke": _parse_xml,
              "pythonic": _parse_pythonic}[syntax]
    content, calls = parser(text, {s.name: s for s in specs or []})
    return content.strip(), [c.model_copy(update={"id": f"call_{i}"}) for i, c in enumerate(calls)]


def cut_after_calls(syntax: str, text: str, specs: list[ToolSpec] | None = None) -> str:
    """The text up to the end of its last call (hermes; other syntaxes: all of it): what a turn
    keeps when the text after the calls is dropped."""
    return text[:_end_of_calls(text, {s.name for s in specs or []})] if syntax == "hermes" else text


def _ok(name, arguments) -> ToolCall:
    return ToolCall(id="", name=name, arguments=arguments)


def _bad(raw: str, why: str, name: str | None = None) -> ToolCall:
    return ToolCall(id="", name=name, arguments=None, raw=raw, parse_error=why)


def _from_object(obj, raw: str) -> ToolCall:
    """{"name": ..., "arguments": {...} or a JSON string of one} -> a call."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return _bad(raw, "no 'name' string in the call object")
    arguments = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            return _bad(raw, f"arguments are not JSON: {exc}", obj["name"])
    if not isinstance(arguments, dict):
        return _bad(raw, "arguments are not a JSON object", obj["name"])
    return _ok(obj["name"], arguments)


# --- openai_json ----------------------------------------------------------------------------

def _render_openai(calls: list[ToolCall]) -> str:
    return json.dumps({"tool_calls": [{"type": "function", "function": {
        "name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}} for c in calls]},
        ensure_ascii=False)


def _parse_openai(text: str, specs) -> tuple[str, list[ToolCall]]:
    match = re.search(r'\{\s*"tool_calls"\s*:', text)
    if not match:
        return text, []
    try:
        obj, end = json.JSONDecoder().raw_decode(text, match.start())
    except json.JSONDecodeError as exc:
        return text[:match.start()], [_bad(text[match.start():], f"invalid JSON: {exc}")]
    items = obj.get("tool_calls")
    if not isinstance(items, list):
        return text[:match.start()], [_bad(text[match.start():end], "'tool_calls' is not a list")]
    calls = [_from_object(i.get("function") if isinstance(i, dict) else None, json.dumps(i)) for i in items]
    return text[:match.start()] + text[end:], calls


# --- hermes -----------------------------------------------------------------------------------

def _render_hermes(calls: list[ToolCall]) -> str:
    return "\n".join(f'<tool_call>\n{json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False)}'
                     f"\n</tool_call>" for c in calls)


def _parse_hermes(text: str, specs) -> tuple[str, list[ToolCall]]:
    if "<tool_call>" not in text and specs:
        return _parse_bare(text, specs)
    calls = []
    for body in re.findall(r"<tool_call>(.*?)</tool_call>", text, flags=re.S):
        try:
            calls.append(_from_object(json.loads(body), body.strip()))
        except json.JSONDecodeError as exc:
            calls.append(_bad(body.strip(), f"invalid JSON: {exc}"))
    content = re.sub(r"<tool_call>.*?</tool_call>", "", text, flags=re.S)
    if "<tool_call>" in content:  # opened, never closed (cut by max_tokens, say)
        head, _, tail = content.partition("<tool_call>")
        calls.append(_bad(tail.strip(), "<tool_call> is never closed"))
        content = head
    return content, calls


# Qwen2.5's chat template shows the call format as {{"name": <function-name>, ...}} (doubled
# braces inside <tool_call> tags), and its small models often copy it without the tags. A bare
# object whose "name" is one of the tools is read as a call (doubled outer braces allowed); any
# other JSON in the text (an answer in JSON) stays content. The stored call is canonical.
_BARE_START = re.compile(r'\{(\{)?\s*"name"\s*:\s*"([^"]+)"')


def _end_of_calls(text: str, names) -> int:
    """Where the last hermes call (tagged, or bare when there is no tag) ends; len(text) if none."""
    if "<tool_call>" in text:
        closed = text.rfind("</tool_call>")
        return closed + len("</tool_call>") if closed > text.rfind("<tool_call>") else len(text)
    calls, pieces = _bare_calls(text, names)
    return len(text) - len(pieces[-1]) if calls else len(text)


def _bare_calls(text: str, names) -> tuple[list[ToolCall], list[str]]:
    """The bare call objects of known tools in the text, and the text pieces around them
    (pieces[i] before call i; the last piece after the last call)."""
    calls, pieces, at = [], [], 0
    for match in _BARE_START.finditer(text):
        if match.start() < at or match.group(2) not in names:
            continue
        start = match.start() + (1 if match.group(1) else 0)
        try:
            obj, end = json.JSONDecoder().raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if match.group(1) and text[end:end + 1] == "}":
            end += 1
        calls.append(_from_object(obj, text[match.start():end]))
        pieces.append(text[at:match.start()])
        at = end
    pieces.append(text[at:])
    return calls, pieces


def _parse_bare(text: str, specs) -> tuple[str, list[ToolCall]]:
    calls, pieces = _bare_calls(text, specs)
    return "".join(pieces), calls


# --- xml_invoke -------------------------------------------------------------------------------

def _render_xml(calls: list[ToolCall]) -> str:
    blocks = []
    for c in calls:
        params = []
        for name, value in c.arguments.items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            if "</parameter>" in text:
                raise ValueError(f"a value containing '</parameter>' cannot be written as xml_invoke ({c.name}.{name})")
            params.append(f'<parameter name="{name}">{text}</parameter>')
        blocks.append(f'<invoke name="{c.name}">\n' + "".join(p + "\n" for p in params) + "</invoke>")
    return "<tool_calls>\n" + "\n".join(blocks) + "\n</tool_calls>"


def _xml_value(raw: str, spec: ToolSpec | None, name: str):
    kind = ((spec.parameters.get("properties", {}).get(name) or {}).get("type") if spec else None)
    if kind == "string":
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw  # not JSON: a string (the call_arguments rule judges it against the schema)


def _parse_xml(text: str, specs) -> tuple[str, list[ToolCall]]:
    calls = []
    for name, body in re.findall(r'<invoke name="([^"]*)">(.*?)</invoke>', text, flags=re.S):
        params = re.findall(r'<parameter name="([^"]*)">(.*?)</parameter>', body, flags=re.S)
        leftover = re.sub(r'<parameter name="[^"]*">.*?</parameter>', "", body, flags=re.S).strip()
        if leftover:
            calls.append(_bad(body.strip(), f"text outside <parameter> tags: {leftover[:40]!r}", name))
            continue
        calls.append(_ok(name, {p: _xml_value(v, specs.get(name), p) for p, v in params}))
    content = re.sub(r"<invoke name=\"[^\"]*\">.*?</invoke>", "", text, flags=re.S)
    content = re.sub(r"</?tool_calls>", "", content)
    if "<invoke" in content:
        head, _, tail = content.partition("<invoke")
        calls.append(_bad("<invoke" + tail, "<invoke> is never closed"))
        content = head
    return content, calls


# --- pythonic ---------------------------------------------------------------------------------

def _render_pythonic(calls: list[ToolCall]) -> str:
    return "[" + ", ".join(f"{c.name}(" + ", ".join(f"{k}={v!r}" for k, v in c.arguments.items()) + ")"
                           for c in calls) + "]"


def _parse_pythonic(text: str, specs) -> tuple[str, list[ToolCall]]:
    starts = [m.start() for m in re.finditer(r"\[\s*[A-Za-z_]\w*\(", text)]
    if not starts:
        return text, []
    tree = None
    for start in starts:  # the first '[name(' from which the rest of the text is one list
        block = text[start:].strip()
        try:
            tree = ast.parse(block, mode="eval").body
            break
        except SyntaxError as exc:
            error = exc.msg
    if tree is None:
        return text[:starts[0]], [_bad(text[starts[0]:].strip(), f"not a Python list of calls: {error}")]
    if not isinstance(tree, ast.List):
        return text[:start], [_bad(block, "not a list of calls")]
    calls = []
    for node in tree.elts:
        raw = ast.unparse(node)
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            calls.append(_bad(raw, "not a call of a tool by name"))
            continue
        if node.args or any(k.arg is None for k in node.keywords):
            calls.append(_bad(raw, "positional or ** arguments: name every argument", node.func.id))
            continue
        try:
            calls.append(_ok(node.func.id, {k.arg: ast.literal_eval(k.value) for k in node.keywords}))
        except (ValueError, SyntaxError) as exc:
            calls.append(_bad(raw, f"an argument is not a literal: {exc}", node.func.id))
    return text[:start], calls
