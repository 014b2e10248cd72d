"""Run a sample's program against a question's tests in throwaway sandbox processes.

    result = run_tests(program, test_code, timeout_s=10, memory_mb=512)
    result.status  # passed | failed | timeout | memory | killed | error | no_code

pipeline/sandbox/supervisor.py starts and watches the processes (the layers are described
there); pipeline/sandbox/child.py is the code that runs inside them.
"""

from pipeline.sandbox.supervisor import STATUSES, SandboxResult, isolation_report, run_many, run_tests

__all__ = ["STATUSES", "SandboxResult", "isolation_report", "run_many", "run_tests"]
