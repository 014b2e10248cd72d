"""Latency of the agentic tool environments' calls, and of the trace rules over stored trajectories.

    .venv/bin/python bench/agentic_envs.py            # 20 calls per tool, 2,000 trajectories
    .venv/bin/python bench/agentic_envs.py --calls 5 --trajectories 200

Per tool: median and max wall time of a call (the sandbox process for run_python, a forkserver
child for the calculator, SQLite in process for shop_db). Then the nine trace rules over
trajectories written to a fresh DuckDB file and read back through TRACE_RULE_INPUT.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CALLS = {
    "python_exec@1": [("run_python", {"code": "import math\nprint(sum(range(100)))\nmath.factorial(20)"})],
    "calculator@1": [("evaluate", {"expression": "2^10 + sqrt(16)"}), ("simplify", {"expression": "(x^2-1)/(x-1)"}),
                     ("solve", {"equations": ["x + y = 3", "x - y = 1"]})],
    "shop_db@1": [("list_tables", {}), ("describe", {"table": "orders"}),
                  ("query", {"sql": "SELECT c.city, count(*) FROM orders o JOIN customers c ON c.id = o.customer_id "
                                    "GROUP BY c.city ORDER BY 2 DESC"})],
}


def bench_tools(n: int) -> None:
    from pipeline.agentic.envs import make

    for ref, calls in CALLS.items():
        env = make(ref)
        for tool, args in calls:
            env.call(tool, args)  # warm (the forkserver starts on the first calculator call)
            times = []
            for _ in range(n):
                started = time.perf_counter()
                obs = env.call(tool, args)
                times.append(time.perf_counter() - started)
                assert obs.ok, obs
            print(f"{ref:15} {tool:12} median {statistics.median(times) * 1000:8.1f} ms   "
                  f"max {max(times) * 1000:8.1f} ms   ({n} calls)")
        env.close()


def bench_rules(n: int) -> None:
    from filters.trace import build_trace_rules
    from pipeline.agentic.store import TRACE_RULE_INPUT, write_trajectories
    from pipeline.store import Store
    from tests.agentic.test_store import trajectory

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.duckdb") as store:
        one = trajectory(0)
        rows = [one.model_copy(update={"seed": seed}) for seed in range(n)]
        started = time.perf_counter()
        write_trajectories(store, rows, run_id="bench")
        written = time.perf_counter() - started
        started = time.perf_counter()
        frame = store.frame(TRACE_RULE_INPUT)
        read = time.perf_counter() - started
        print(f"store: wrote {n} trajectories ({store.count('trajectory_messages')} messages) in {written:.2f} s, "
              f"read the rule input in {read:.2f} s")
        for rule in build_trace_rules():
            started = time.perf_counter()
            result = rule.check_batch(frame)
            took = time.perf_counter() - started
            print(f"rule {rule.name:31} {n / took:9.0f} trajectories/s   failed {int((~result['passed']).sum())}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--trajectories", type=int, default=2000)
    args = parser.parse_args()
    bench_tools(args.calls)
    bench_rules(args.trajectories)


if __name__ == "__main__":
    main()
