"""Tasks from pool questions: math with the calculator, code with the Python executor.

    task = math_task(question_id, text, reference)    # calculator@1, verified by the math matcher
    task = code_task(question_id, text, tests)        # python_exec@1, verified by the tests
    tasks = tasks_from_questions(frame)               # rows of the questions table

A math question needs a reference answer; a code question needs tests, and only plain `assert`
lines are taken (the simple ones: setup code or imports in a test would need more than the
sandbox's test runner guarantees). The question text gets a short line on the tools and the
answer's form; the rest of the instructions (think before each call, the call syntax) are the
rollout's system prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from schemas.agentic import Task, Verification

GENERATOR = "pool_questions@1"
MATH_ANSWER_TYPES = ("math", "numeric")
_MATH_NOTE = ("\n\nYou may use the calculator tools for exact arithmetic. End with the answer alone on the last "
              "line as 'Final answer: ...'.")
_CODE_NOTE = ("\n\nYou may run Python with the run_python tool to test your code. End with the complete solution "
              "in one ```python block.")


CALCULATOR_TOOLS = ("evaluate", "simplify", "solve")


def math_task(question_id: str, text: str, reference: str, domain: str = "math",
              tools: list[str] | tuple[str, ...] = CALCULATOR_TOOLS) -> Task:
    return Task(source="pool", question_id=question_id, domain=domain, text=text.strip() + _MATH_NOTE,
                environment="calculator@1", tools=list(tools),
                verification=Verification(kind="math", reference=reference))


def simple_tests(tests: Iterable[str] | None) -> list[str] | None:
    tests = [t.strip() for t in tests or [] if t and t.strip()]
    if not tests or not all(t.startswith("assert ") and "\n" not in t for t in tests):
        return None
    return tests


def code_task(question_id: str, text: str, tests: list[str], domain: str = "code") -> Task:
    return Task(source="pool", question_id=question_id, domain=domain, text=text.strip() + _CODE_NOTE,
                environment="python_exec@1", tools=["run_python"],
                verification=Verification(kind="code_tests", tests=tests))


def tasks_from_questions(rows: Iterable[Mapping], math_tools=CALCULATOR_TOOLS) -> tuple[list[Task], list[Task]]:
    """(math tasks, code tasks) from question rows: question_id, text, domain, answer_type,
    reference_answer, tests. Questions that fit neither are left out."""
    math, code = [], []
    for q in rows:
        if q["answer_type"] in MATH_ANSWER_TYPES and q["reference_answer"]:
            math.append(math_task(q["question_id"], q["text"], q["reference_answer"], q["domain"], math_tools))
        elif q["answer_type"] == "code" and (tests := simple_tests(q["tests"])):
            code.append(code_task(q["question_id"], q["text"], tests, q["domain"]))
    return math, code
