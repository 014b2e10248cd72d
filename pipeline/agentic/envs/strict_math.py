"""A strict parser from math text to sympy, with no eval.

sympy's `sympify` / `parse_expr` run Python `eval` on the (transformed) text, so a string such as
`().__class__.__base__.__subclasses__()` reaches Python objects. Here the text is only *parsed*
by Python's `ast` (parsing executes nothing), and the tree is translated node by node into
sympy objects: numbers, names (symbols or a listed constant), + - * / ** % (^ is read as **), unary minus, and
calls of listed functions by plain name. Anything else (attributes, subscripts, strings,
lambdas, keywords, comprehensions, names with underscores first) is a ParseError naming it.
"""

from __future__ import annotations

import ast
import re

import sympy

MAX_CHARS = 2000
MAX_DEPTH = 60

FUNCTIONS = {
    "sqrt": sympy.sqrt, "cbrt": sympy.cbrt, "root": sympy.root, "exp": sympy.exp, "log": sympy.log,
    "ln": sympy.log, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "asin": sympy.asin,
    "acos": sympy.acos, "atan": sympy.atan, "atan2": sympy.atan2, "sinh": sympy.sinh, "cosh": sympy.cosh,
    "tanh": sympy.tanh, "abs": sympy.Abs, "Abs": sympy.Abs, "factorial": sympy.factorial,
    "binomial": sympy.binomial, "gcd": sympy.gcd, "lcm": sympy.lcm, "floor": sympy.floor,
    "ceiling": sympy.ceiling, "ceil": sympy.ceiling, "min": sympy.Min, "max": sympy.Max,
    "Min": sympy.Min, "Max": sympy.Max, "Rational": sympy.Rational, "expand": sympy.expand,
    "factor": sympy.factor, "simplify": sympy.simplify, "diff": sympy.diff, "integrate": sympy.integrate,
    "isprime": lambda n: sympy.true if sympy.isprime(n) else sympy.false, "mod": sympy.Mod,
}
CONSTANTS = {"pi": sympy.pi, "E": sympy.E, "e": sympy.E, "I": sympy.I, "i": sympy.I, "oo": sympy.oo,
             "inf": sympy.oo}
_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b,
           ast.Mod: sympy.Mod}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class ParseError(ValueError):
    pass


def parse_math(text: str) -> sympy.Basic:
    """Text -> sympy expression, strictly (see the module doc). Raises ParseError."""
    if len(text) > MAX_CHARS:
        raise ParseError(f"expression longer than {MAX_CHARS} characters")
    try:
        # ^ is a power in math text; as Python's xor it would bind looser than + (2^10+4 = 2^14)
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        hint = " (write products with *, e.g. 2*x)" if re.search(r"\d[A-Za-z(]", text) else ""
        raise ParseError(f"not a valid expression: {exc.msg}{hint}") from None
    except (RecursionError, MemoryError):
        raise ParseError("expression nested too deeply") from None
    return _to_sympy(tree.body, 0)


def parse_equation(text: str) -> sympy.Basic:
    """'lhs = rhs' (or ==) -> lhs - rhs; an expression alone means expression = 0."""
    parts = re.split(r"==?", text)
    if len(parts) > 2:
        raise ParseError(f"more than one '=' in {text!r}")
    if len(parts) == 2:
        return parse_math(parts[0]) - parse_math(parts[1])
    return parse_math(text)


def _to_sympy(node: ast.AST, depth: int):
    if depth > MAX_DEPTH:
        raise ParseError("expression nested too deeply")
    d = depth + 1
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ParseError(f"only numbers are allowed as constants, not {node.value!r}")
        return sympy.Integer(node.value) if isinstance(node.value, int) else sympy.Float(repr(node.value))
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in FUNCTIONS:
            raise ParseError(f"{node.id} is a function: call it, e.g. {node.id}(x)")
        if not _NAME.match(node.id):
            raise ParseError(f"not allowed as a variable name: {node.id!r}")
        return sympy.Symbol(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_to_sympy(node.left, d), _to_sympy(node.right, d))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _to_sympy(node.operand, d)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            what = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
            raise ParseError(f"unknown function {what!r}; known: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise ParseError("keyword arguments are not allowed")
        args = [_to_sympy(a, d) for a in node.args]
        try:
            return FUNCTIONS[node.func.id](*args)
        except (TypeError, ValueError) as exc:
            raise ParseError(f"{node.func.id}: {exc}") from None
    raise ParseError(f"not allowed in an expression: {type(node).__name__} ({ast.unparse(node)[:60]!r})")
