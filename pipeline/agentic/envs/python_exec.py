"""Python executor: run a cell of Python in the project's sandbox (pipeline/sandbox) and observe
its stdout, stderr and the value of its last expression, as a notebook shows it.

Every call is a fresh sandbox process (stdlib only, no network, no files kept), so the
environment is stateless: a cell must define what it uses. The tool description says so.
"""

from __future__ import annotations

import ast
import secrets

from pipeline.agentic.envs.base import Environment, Observation, ToolError, tool
from pipeline.sandbox import run_program

# The user's cell runs inside this wrapper, in the sandbox's program process: line-buffered
# output (a timeout keeps what was printed), the traceback printed rather than raised (the cell
# failing is an observation), the last expression's repr after a per-call marker line.
_WRAPPER = '''
import sys as _sys
_sys.stdout.reconfigure(line_buffering=True)
_sys.stderr.reconfigure(line_buffering=True)
_g = {{"__name__": "__main__"}}
try:
    exec(compile({body!r}, "<cell>", "exec"), _g)
    _value = eval(compile({last!r}, "<cell>", "eval"), _g) if {last!r} else None
    if _value is not None:
        _sys.stdout.write("\\n{marker}\\n" + repr(_value)[:{max_repr}])
except BaseException:
    import traceback as _tb
    _lines = _tb.format_exc().splitlines()
    # drop the wrapper's own frame: the model sees its cell's lines only
    _sys.stderr.write("\\n".join(l for i, l in enumerate(_lines) if '"<program>"' not in l) + "\\n")
finally:
    _sys.stdout.flush()
    _sys.stderr.flush()
'''


def split_last_expression(code: str) -> tuple[str, str]:
    """(the statements, the last expression's source or '') so the cell's value can be shown.
    Raises ToolError for a syntax error (the model sees it as the observation)."""
    try:
        module = ast.parse(code)
    except SyntaxError as exc:
        raise ToolError(f"SyntaxError: {exc.msg} (line {exc.lineno})") from None
    if module.body and isinstance(module.body[-1], ast.Expr):
        last = module.body[-1]
        lines = code.splitlines(keepends=True)
        head = "".join(lines[:last.lineno - 1]) + lines[last.lineno - 1][:last.col_offset]
        # padded with newlines so a traceback names the cell's own line numbers
        return head, "\n" * (last.lineno - 1) + ast.get_source_segment(code, last)
    return code, ""


class PythonExecutor(Environment):
    name = "python_exec"
    version = 1
    tools = [tool("run_python",
                  "Run Python 3 code (standard library only, no network, no files kept) and return its "
                  "stdout, stderr and the value of the last expression. Each call starts fresh: define "
                  "every name you use in the same call.",
                  {"code": {"type": "string", "minLength": 1, "description": "the Python code to run"}})]

    def __init__(self, timeout_s: float = 10, memory_mb: int = 512, max_chars: int = 4000):
        self.timeout_s, self.memory_mb, self.max_chars = timeout_s, memory_mb, max_chars

    def tool_run_python(self, code: str) -> dict:
        raise AssertionError("handled by _observe")  # pragma: no cover

    def _observe(self, handler, arguments: dict) -> Observation:
        body, last = split_last_expression(arguments["code"])
        marker = f"__curate_value_{secrets.token_hex(8)}__"
        program = _WRAPPER.format(body=body, last=last, marker=marker, max_repr=self.max_chars)
        run = run_program(program, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        stdout, _, value = run.stdout.partition(f"\n{marker}\n")
        content = {"stdout": self._cap(stdout), "stderr": self._cap(run.stderr),
                   "value": value if value else None}
        status = run.result.status
        if status == "timeout":
            return Observation("timeout", content=content, error=f"timed out after {self.timeout_s:g} s")
        if status in ("memory", "killed", "error"):
            return Observation("error", content=content, error=f"{status}: {run.result.detail}")
        if run.stderr.strip().splitlines()[-1:] and "Traceback" in run.stderr:
            last_line = run.stderr.strip().splitlines()[-1]
            return Observation("error", content=content, error=last_line)
        return Observation("ok", content=content)

    def _cap(self, text: str) -> str:
        if len(text) <= self.max_chars:
            return text
        half = self.max_chars // 2
        return text[:half] + f"\n[... {len(text) - 2 * half} characters cut ...]\n" + text[-half:]
