"""Run a pure function in a child process with a wall-clock timeout and a memory cap.

A sympy call can run for ever (`factorial(10**9)`, a hard `solve`) and a thread cannot be
stopped, so each call is a process forked from a forkserver (a clean process that imported
sympy once: about 10 ms a call after its first start, and safe in a multithreaded parent such
as a vLLM rollout, where a plain fork is not). The child is killed at the deadline.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
from collections.abc import Callable
from typing import Any

_CTX = None


def _context():
    global _CTX
    if _CTX is None:
        _CTX = mp.get_context("forkserver")
        _CTX.set_forkserver_preload(["sympy", "pipeline.agentic.envs.calculator"])
    return _CTX


def _child(conn, fn, args, memory_mb):
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        conn.send(("ok", fn(*args)))
    except MemoryError:
        conn.send(("error", f"out of memory (over {memory_mb} MB)"))
    except BaseException as exc:  # the tool's error is the observation
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def call_with_timeout(fn: Callable, args: tuple, timeout_s: float, memory_mb: int = 1024) -> tuple[str, Any]:
    """("ok", value) | ("error", message) | ("timeout", None). fn and its value must pickle."""
    ctx = _context()
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, memory_mb), daemon=True)
    proc.start()
    send.close()
    try:
        if receive.poll(timeout_s):
            try:
                return receive.recv()
            except EOFError:
                return "error", f"the worker died (exit {proc.exitcode})"
        return "timeout", None
    finally:
        receive.close()
        if proc.is_alive():
            proc.kill()
        proc.join()
