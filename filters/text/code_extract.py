"""Pure helpers for code verification: the program in an answer, and the test program of a question.

    names = required_names(question.tests)                   # e.g. {"similar_elements"}
    program = extract_program(sample_answer, names)          # None -> status "no_code"
    tests = build_test_program(question.tests)               # MBPP asserts or HumanEval check
    pipeline.sandbox.run_tests(program, tests)

Program: the fenced ```python blocks (``` blocks without a language if there are none; the
whole answer if it parses as Python); blocks nested in a ```markdown block count. The last
block that defines every name the tests call wins; else all the blocks together if they do;
else the last block defining anything; else the last block. No I/O.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterable, Sequence

# A closing fence is a line of backticks alone: "```python" opens a block even inside another one.
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.DOTALL | re.MULTILINE)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}
# Modules the tests may use without importing them (MBPP's test_imports are all `import math`).
_IMPLIED_MODULES = ("math", "re", "collections", "itertools", "heapq", "functools", "string", "sys", "cmath")


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False


def defined_names(code: str) -> set[str]:
    """Top-level functions, classes and assigned names of `code` (empty if it does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def extract_program(answer: str | None, required: Iterable[str] = ()) -> str | None:
    """The program in a sample's answer, or None when there is none."""
    if not answer or not answer.strip():
        return None
    blocks = _blocks(answer)
    for group in ([b for t, b in blocks if t in _PYTHON_TAGS], [b for t, b in blocks if not t]):
        if group:
            return _pick(group, set(required))
    if not blocks and _parses(answer.strip()):
        return answer.strip()
    return None


def _blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of the fenced blocks; a non-Python block's inner fences count too
    (the 1.5B model wraps its ```python block in a ```markdown one)."""
    found = []
    for tag, body in _FENCE.findall(text):
        tag = tag.lower()
        inner = _blocks(body) if tag not in _PYTHON_TAGS and "```" in body else []
        found += inner or ([(tag, body)] if body.strip() else [])
    return found


def _pick(blocks: list[str], required: set[str]) -> str:
    parsed = [b for b in blocks if _parses(b)]
    if required:
        complete = [b for b in parsed if required <= defined_names(b)]
        if complete:
            return complete[-1]
        joined = "\n\n".join(parsed)
        if len(parsed) > 1 and required <= defined_names(joined):
            return joined
    defining = [b for b in parsed if defined_names(b)]
    return (defining or parsed or blocks)[-1]


def required_names(tests: Sequence[str] | None) -> set[str]:
    """Names the tests use but do not define: the functions the program must provide."""
    if not tests:
        return set()
    try:
        tree = ast.parse("\n".join(tests))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return set()
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return loaded - bound - set(dir(builtins)) - set(_IMPLIED_MODULES)


def build_test_program(tests: Sequence[str] | None, test_imports: Sequence[str] = ()) -> str | None:
    """The test code run after the program, or None without tests.

    MBPP: tests = ["assert f(1) == 2", ...], optional test_imports = ["import math"].
    HumanEval: tests = humaneval_tests(record["test"], record["entry_point"]).
    Modules from a short list (math, re, collections, ...) that the tests use without
    importing are imported first (ingest keeps MBPP's test_list but not its test_imports).
    """
    if not tests:
        return None
    body = "\n".join(tests)
    imports = list(test_imports)
    try:
        used = {n.id for n in ast.walk(ast.parse(body)) if isinstance(n, ast.Name)}
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        used = set()
    imports += [f"import {m}" for m in _IMPLIED_MODULES if m in used and f"import {m}" not in imports]
    return "\n".join([*imports, body]) + "\n"


def humaneval_tests(check_source: str, entry_point: str, prompt: str = "") -> list[str]:
    """HumanEval's `test` (defines check(candidate)) and the call, as a question's `tests`.

    With the prompt, its helper functions (`poly` for find_zero, `encode_cyclic` for
    decode_cyclic) go into the tests too: the tests use them to check the answer, so they must
    be the prompt's own and not whatever the program defines under those names.
    """
    return [*prompt_helpers(prompt, entry_point), check_source, f"check({entry_point})"]


def prompt_helpers(prompt: str, entry_point: str) -> list[str]:
    """The imports and the functions of a prompt other than the one to write."""
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    keep = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
            or (isinstance(n, ast.FunctionDef) and n.name != entry_point)]
    return [seg for seg in (ast.get_source_segment(prompt, n, padded=True) for n in keep) if seg]


def with_prompt_imports(program: str, prompt: str) -> str:
    """Prefix the program with the top-level imports of a HumanEval prompt (`from typing import List`)."""
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return program
    imports = [ast.get_source_segment(prompt, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n".join([*filter(None, imports), program])
