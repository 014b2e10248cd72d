"""Run a sample's program against a question's tests in throwaway sandbox processes.

    result = run_tests(program, test_code, timeout_s=10, memory_mb=512)
    result.status  # passed | failed | timeout | memory | killed | error | no_code
    run = run_program(code, timeout_s=5)   # run.result, run.stdout, run.stderr (the agentic executor)

pipeline/sandbox/supervisor.py starts and watches the processes (the layers are described
there); pipeline/sandbox/child.py is the code that runs inside them.
"""

from pipeline.sandbox.supervisor import (STATUSES, ProgramRun, SandboxResult, isolation_report, run_many,
                                        run_program, run_tests)

__all__ = ["STATUSES", "ProgramRun", "SandboxResult", "isolation_report", "run_many", "run_program", "run_tests"]
