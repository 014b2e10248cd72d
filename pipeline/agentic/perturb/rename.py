"""Render-time renaming of tools and their parameters, consistently through a whole trajectory: the
tool specs, every call (name and argument keys), every tool turn's name, and every mention in
reasoning and content, so the model does not learn one scaffold's names.

    rename = Rename.draw(seed, tools)
    tools2, messages2 = rename.apply(tools, messages)
    assert not rename.survivors(messages2)     # no old name left where it names a tool

Which mentions are names: an identifier-like old name (list_tables, run_python: it has an `_` or
is not an English word) everywhere, and any old name written as code: in backticks, followed by
`(`, or as `name=` / `"name":`. A bare English word in prose ("the query returned 10",
"the customers table") is left alone: it is a word there, not the tool, and rewriting it would
teach the model garbled prose. survivors() checks exactly the mentions apply() rewrites.
"""

from __future__ import annotations

import random
import re

from pydantic import BaseModel, ConfigDict

from schemas.agentic import Message, ToolSpec

TOOL_NAMES = {
    "list_tables": ["show_tables", "get_tables", "tables_list"],
    "describe": ["describe_table", "table_schema", "get_columns"],
    "query": ["run_sql", "sql_query", "execute_sql"], "run_python": ["python", "execute_python", "exec_code"],
    "evaluate": ["calc", "compute", "eval_math"], "simplify": ["simplify_expr", "cas_simplify", "reduce_expr"],
    "solve": ["solve_equations", "equation_solver", "find_roots"],
}
PARAM_NAMES = {
    "sql": ["statement", "sql_text", "query_sql"], "table": ["table_name", "tbl"],
    "code": ["source", "program", "snippet"],
    "expression": ["expr", "formula", "math"], "digits": ["precision", "sig_digits"],
    "equations": ["eqs", "system"], "variables": ["unknowns", "solve_for"],
}
# Old names that are English words: renamed in prose only where written as code (module doc).
_WORDS = {"query", "describe", "evaluate", "simplify", "solve", "sql", "table", "code", "expression", "digits",
          "equations", "variables"}


class Rename(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int
    tools: dict[str, str]                  # old tool name -> new
    params: dict[str, dict[str, str]]      # old tool name -> {old parameter -> new}

    @classmethod
    def draw(cls, seed: int, specs: list[ToolSpec]) -> "Rename":
        rng = random.Random(seed)
        taken = {s.name for s in specs}
        tools, params = {}, {}
        for spec in specs:
            tools[spec.name] = _pick(rng, TOOL_NAMES.get(spec.name, [f"{spec.name}_tool", f"do_{spec.name}"]), taken)
            taken.add(tools[spec.name])
            # sorted: a stored trajectory's tools come back with their keys sorted (JSON), and the
            # same seed must draw the same names from either
            names = sorted(spec.parameters.get("properties", {}))
            own = set(names)
            params[spec.name] = {}
            for p in names:
                params[spec.name][p] = _pick(rng, PARAM_NAMES.get(p, [f"{p}_value", f"arg_{p}"]), own | taken)
                own.add(params[spec.name][p])
        return cls(seed=seed, tools=tools, params=params)

    def record(self) -> dict:
        return {"rename_seed": self.seed, "tool_names": self.tools, "param_names": self.params}

    # --- applying -------------------------------------------------------------------------

    def spec(self, spec: ToolSpec) -> ToolSpec:
        mapping = self.params.get(spec.name, {})
        schema = dict(spec.parameters)
        schema["properties"] = {mapping.get(k, k): v | ({"description": self.text(v["description"])}
                                                       if isinstance(v.get("description"), str) else {})
                                for k, v in spec.parameters.get("properties", {}).items()}
        if "required" in schema:
            schema["required"] = [mapping.get(k, k) for k in schema["required"]]
        return ToolSpec(name=self.tools.get(spec.name, spec.name), description=self.text(spec.description) or "",
                        parameters=schema)

    def message(self, m: Message) -> Message:
        calls = None
        if m.tool_calls is not None:
            calls = [c.model_copy(update={
                "name": self.tools.get(c.name, c.name) if c.name else c.name,
                "arguments": None if c.arguments is None else
                {self.params.get(c.name or "", {}).get(k, k): v for k, v in c.arguments.items()}})
                for c in m.tool_calls]
        return m.model_copy(update={"content": self.text(m.content), "reasoning": self.text(m.reasoning),
                                    "tool_calls": calls, "name": self.tools.get(m.name, m.name) if m.name else None})

    def apply(self, specs: list[ToolSpec], messages: list[Message]) -> tuple[list[ToolSpec], list[Message]]:
        return [self.spec(s) for s in specs], [self.message(m) if m.role != "tool" else self._tool_turn(m)
                                               for m in messages]

    def _tool_turn(self, m: Message) -> Message:
        # an observation is the environment's data (a column named `table`, say): only the tool's name changes
        return m.model_copy(update={"name": self.tools.get(m.name, m.name) if m.name else None})

    def text(self, text: str | None) -> str | None:
        if not text:
            return text
        pairs = self._pairs()
        # two passes through placeholders, so a new name that contains an old one is not renamed again
        for i, (old, _) in enumerate(pairs):
            text = _pattern(old).sub(lambda match, i=i, old=old: match.group(0).replace(old, f"\x00{i}\x00"), text)
        return re.sub(r"\x00(\d+)\x00", lambda match: pairs[int(match.group(1))][1], text)

    def survivors(self, messages: list[Message]) -> list[str]:
        """Old names still written as names in reasoning or content (should be none)."""
        found = set()
        for m in messages:
            if m.role == "tool":
                continue
            for text in (m.reasoning, m.content):
                found.update(old for old, _ in self._pairs() if text and _pattern(old).search(text))
        return sorted(found)

    def _pairs(self) -> list[tuple[str, str]]:
        pairs = dict(self.tools)
        for mapping in self.params.values():
            for old, new in mapping.items():
                pairs.setdefault(old, new)
        return sorted(pairs.items(), key=lambda kv: -len(kv[0]))  # longer names first


def _pick(rng: random.Random, options: list[str], taken: set[str]) -> str:
    free = [o for o in options if o not in taken]
    return rng.choice(free) if free else f"{options[0]}_{rng.randrange(100, 1000)}"


def _pattern(old: str) -> re.Pattern:
    name = re.escape(old)
    if old not in _WORDS:  # an identifier: every whole-word mention is the name
        return re.compile(rf"(?<![\w]){name}(?![\w])")
    # an English word: only where written as code
    return re.compile(rf"`{name}`|(?<![\w.]){name}(?=\s*\()|(?<![\w.]){name}(?=\s*=[^=])|\"{name}\"(?=\s*:)")
