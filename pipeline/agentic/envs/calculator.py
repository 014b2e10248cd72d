"""Calculator / CAS on sympy: evaluate, simplify, solve. Input is parsed strictly
(pipeline/agentic/envs/strict_math.py: Python's ast, translated node by node, never eval), and
each call runs in a child process with a timeout and a memory cap (timebox.py). Stateless."""

from __future__ import annotations

import sympy

from pipeline.agentic.envs.base import Environment, Observation, ToolError, tool
from pipeline.agentic.envs.strict_math import ParseError, parse_equation, parse_math
from pipeline.agentic.envs.timebox import call_with_timeout

_EXPR = {"type": "string", "minLength": 1, "maxLength": 2000,
         "description": "a math expression: numbers, variables, + - * / ^ (or **), functions such as sqrt, log, sin"}


def _evaluate(expression: str, digits: int) -> dict:
    value = sympy.simplify(parse_math(expression))
    if value.has(sympy.zoo, sympy.nan):
        raise ParseError(f"undefined: {expression} is {value} (a division by zero?)")
    out = {"exact": str(value)}
    if value.is_number and not value.is_Integer:
        out["decimal"] = str(sympy.N(value, digits))
    return out


def _simplify(expression: str) -> dict:
    return {"simplified": str(sympy.simplify(parse_math(expression)))}


def _solve(equations: list[str], variables: list[str] | None) -> dict:
    exprs = [parse_equation(e) for e in equations]
    symbols = [sympy.Symbol(v) for v in variables] if variables else sorted(
        set().union(*(e.free_symbols for e in exprs)), key=str)
    if not symbols:
        raise ParseError("nothing to solve for: the equations have no variables")
    solutions = sympy.solve(exprs, symbols, dict=True)
    return {"variables": [str(s) for s in symbols],
            "solutions": [{str(k): str(v) for k, v in sorted(sol.items(), key=lambda kv: str(kv[0]))}
                          for sol in solutions]}


class Calculator(Environment):
    name = "calculator"
    version = 1
    tools = [
        tool("evaluate", "Evaluate a math expression exactly, with a decimal value when it is a number.",
             {"expression": _EXPR,
              "digits": {"type": "integer", "minimum": 1, "maximum": 50, "description": "significant digits"}},
             required=["expression"]),
        tool("simplify", "Simplify a symbolic expression.", {"expression": _EXPR}),
        tool("solve", "Solve equations ('x^2 = 4', or an expression meaning '= 0') for the variables.",
             {"equations": {"type": "array", "items": _EXPR, "minItems": 1, "maxItems": 10},
              "variables": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
                            "description": "what to solve for (default: every variable)"}},
             required=["equations"]),
    ]

    def __init__(self, timeout_s: float = 5, memory_mb: int = 1024):
        self.timeout_s, self.memory_mb = timeout_s, memory_mb

    def tool_evaluate(self, expression: str, digits: int = 15):
        return self._run(_evaluate, (expression, digits))

    def tool_simplify(self, expression: str):
        return self._run(_simplify, (expression,))

    def tool_solve(self, equations: list[str], variables: list[str] | None = None):
        return self._run(_solve, (equations, variables))

    def _run(self, fn, args):
        status, value = call_with_timeout(fn, args, self.timeout_s, self.memory_mb)
        if status == "timeout":
            raise _Timeout(f"timed out after {self.timeout_s:g} s")
        if status == "error":
            raise ToolError(value.removeprefix("ParseError: "))
        return value

    def _observe(self, handler, arguments: dict) -> Observation:
        try:
            return Observation("ok", content=handler(**arguments))
        except _Timeout as exc:
            return Observation("timeout", error=str(exc))


class _Timeout(Exception):
    pass
