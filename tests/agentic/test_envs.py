"""The Python executor (on the real sandbox) and the calculator (sympy, strict parsing): results,
and failures as observations, never exceptions."""

from __future__ import annotations

import pytest

from pipeline.agentic.envs import ENVIRONMENTS, make
from pipeline.agentic.envs.calculator import Calculator
from pipeline.agentic.envs.python_exec import PythonExecutor
from pipeline.agentic.envs.strict_math import ParseError, parse_math


@pytest.fixture(scope="module")
def py():
    return PythonExecutor(timeout_s=2)


@pytest.fixture(scope="module")
def calc():
    return Calculator(timeout_s=2)


def test_registry_knows_three_versioned_environments():
    assert sorted(ENVIRONMENTS) == ["calculator@1", "python_exec@1", "shop_db@1"]
    with pytest.raises(KeyError, match="known"):
        make("nope@1")


def test_python_cell_shows_stdout_and_last_value(py):
    obs = py.call("run_python", {"code": "x = 6\nprint(x * 7)\nsum(range(x))"})
    assert obs.status == "ok"
    assert obs.content["stdout"] == "42\n" and obs.content["value"] == "15"
    assert py.call("run_python", {"code": "y = 1; (y +\n 2)"}).content["value"] == "3"
    assert py.call("run_python", {"code": "for i in range(2):\n    print(i)"}).content == {
        "stdout": "0\n1\n", "stderr": "", "value": None}


def test_python_exception_is_an_error_observation_with_the_cells_traceback(py):
    obs = py.call("run_python", {"code": "print('before')\n{}['missing']"})
    assert obs.status == "error" and obs.error == "KeyError: 'missing'"
    assert obs.content["stdout"] == "before\n"
    assert '"<cell>", line 2' in obs.content["stderr"] and "<program>" not in obs.content["stderr"]


def test_python_syntax_error_and_bad_arguments_are_observations(py):
    assert py.call("run_python", {"code": "def f(:"}).error.startswith("SyntaxError")
    bad = py.call("run_python", {"code": 3})
    assert bad.status == "error" and "not of type 'string'" in bad.error
    assert "required property" in py.call("run_python", {}).error
    assert "unknown tool" in py.call("run_bash", {"cmd": "ls"}).error


def test_python_timeout_keeps_what_was_printed(py):
    obs = py.call("run_python", {"code": "print('started')\nwhile True:\n    pass"})
    assert obs.status == "timeout" and obs.content["stdout"] == "started\n"


def test_python_cells_are_sandboxed_and_stateless(py):
    assert "network access is not allowed" in py.call(
        "run_python", {"code": "import socket\nsocket.create_connection(('1.1.1.1', 80))"}).error
    py.call("run_python", {"code": "secret = 1"})
    assert "NameError" in py.call("run_python", {"code": "secret"}).error
    assert py.state_hash() == PythonExecutor().state_hash()


@pytest.mark.parametrize("expression, exact", [("2^10 + sqrt(16)", "1028"), ("(x^2 - 1)/(x - 1)", "x + 1"),
                                               ("sin(pi/6)", "1/2"), ("binomial(10, 3)", "120")])
def test_calculator_evaluates_exactly(calc, expression, exact):
    obs = calc.call("evaluate", {"expression": expression})
    assert obs.status == "ok" and obs.content["exact"] == exact


def test_calculator_decimal_and_solve(calc):
    assert calc.call("evaluate", {"expression": "pi", "digits": 10}).content["decimal"] == "3.141592654"
    solved = calc.call("solve", {"equations": ["x + y = 3", "x - y = 1"]}).content
    assert solved == {"variables": ["x", "y"], "solutions": [{"x": "2", "y": "1"}]}
    assert calc.call("solve", {"equations": ["x^2 = 4"], "variables": ["x"]}).content["solutions"] == [
        {"x": "-2"}, {"x": "2"}]
    assert calc.call("simplify", {"expression": "sin(x)^2 + cos(x)^2"}).content == {"simplified": "1"}


@pytest.mark.parametrize("text", ["().__class__.__base__", "__import__('os')", "x.real", "'abc'", "[1, 2][0]",
                                  "lambda: 1", "f(x=1)", "_x + 1", "eval('1')"])
def test_strict_parser_refuses_python(text):
    with pytest.raises(ParseError):
        parse_math(text)


def test_calculator_errors_and_timeouts_are_observations(calc):
    assert calc.call("evaluate", {"expression": "1/0"}).status == "error"
    assert "write products with *" in calc.call("evaluate", {"expression": "2x + 1"}).error
    assert "Attribute" in calc.call("evaluate", {"expression": "().__class__"}).error
    assert calc.call("evaluate", {"expression": "factorial(10**8)"}).status == "timeout"
    assert "maximum" in calc.call("evaluate", {"expression": "1", "digits": 500}).error
