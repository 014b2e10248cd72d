"""Start and watch the two processes of a sandbox job (child.py is what runs inside them).

    result = run_tests(program, test_code, timeout_s=10, memory_mb=512)
    result.status  # passed | failed | timeout | memory | killed | error | no_code

A job is two fresh `python -I -S -B` processes (stdlib only, no site-packages, no .pyc
writes), each in its own session and namespaces, with its own fresh temporary folder as cwd,
HOME and TMPDIR, removed afterwards whatever happens:

  program  runs the untrusted program (`__name__` is "solution", so demo code under
           `if __name__ == "__main__":` does not run), then answers the tests' calls;
  tests    runs the test code against stand-ins for the program's names. Calls and results
           cross between the two as data (builtin types; the program's own objects as opaque
           handles), so a result cannot override `==`, and the test code, builtins, the
           harness and the verdict pipe are in a process the program cannot reach.

A job passes only if the tests process reports, on its private pipe and with a random
per-job token, that it reached the end of the tests, and then exits cleanly. The program's
process is never asked whether the tests passed: `sys.exit(0)`, `os._exit(0)`, printing
"all tests passed", patching builtins or the harness, or a killed process are never a pass.

Layers, strongest first (`isolation_report()` says which are active on this machine; the
best working mode is probed once per process):

  namespaces (`unshare -r -n -m -p -f --kill-child --mount-proc`, unprivileged):
    network   empty network namespace: no interfaces but a down loopback, so no connection
              anywhere, local or remote.
    mount     a new root holding only the system folders (/usr, /etc, ...), the stdlib and
              five device files, all read-only (recursive mount_setattr); the work folder is
              a private size-capped tmpfs. The project, the store, the question pools, /tmp,
              /home, /run and the host's Unix sockets are not there to read or connect to;
              nothing can be written outside the work folder, and what is written inside
              vanishes with the job.
    pid       the program is pid 1 of its own pid namespace and /proc shows only its own
              processes: it cannot signal or ptrace anything outside, and when it exits or is
              killed every process it started dies with it.
    user      the program is "root" only inside the namespace; its capabilities are dropped
              (bounding set, effective/permitted, securebits locked) before user code runs, so
              it cannot undo the read-only remount or move itself out of its cgroup.
    Needs unprivileged user namespaces and Linux >= 5.12 (mount_setattr); otherwise weaker
    modes are tried: user+net+pid, user+net, then none.
  no_new_privs (every mode): setuid programs (sudo) and file capabilities grant nothing.
  process count: a pids cgroup per job when one can be created (here: as root, cgroup v1),
    else RLIMIT_NPROC, which the kernel enforces only for a non-root uid (it ignores it for
    real root, even inside a user namespace created by root).
  rlimits: CPU seconds (timeout + 1: SIGXCPU, then SIGKILL a second later), address space (so big
    allocations raise MemoryError), file size, open files, no core files.
  parent side: wall-clock timeout from the moment user code starts, stdout+stderr capped
    (the job is killed past `max_output_kb`), the whole session/cgroup killed at the end.
  Python-level guard (on by default, `guard=False` to test the layers above alone): sockets
    and DNS lookups refuse; open()/os.* writes, deletes, renames outside the work folder raise
    PermissionError; fork/exec/subprocess/posix_spawn/setsid raise; os.kill/killpg only
    reach the job's own process group; ctypes cannot be imported.

What is NOT contained (be honest about it):
  * The Python guard is defense in depth, not a boundary: code that digs out the saved
    originals (gc, frames, `_io.FileIO`, `importlib` tricks) gets around it. Without the
    namespace layers (mode "none", e.g. where unprivileged user namespaces are disabled) it is
    the only thing stopping writes outside the folder, network access and signals to the
    parent; the rlimits, the session kill and the timeout still hold.
  * Without the mount namespace, reads are not restricted: the program can read whatever the
    user running the pipeline can read (the question pools with their tests included), and
    in mode "none" it runs as the same uid as the tests process, which it could then ptrace.
  * A program function named like a builtin (`def sum`) is given to the tests only when they
    use no other program name (then it is the function under test); in that case the tests'
    other calls to builtins of the same names would reach the program too.
  * Tests that pass their own functions (callbacks) to the program are not supported: only
    data and the program's own objects cross between the two processes.
  * Memory is limited per process (RLIMIT_AS); with several processes the total can reach
    memory_mb x max_procs. No memory cgroup is used (it would sit in the host's hierarchy).
  * Without a pid namespace, a process that escapes the session (setsid via C code) and the
    cgroup survives the job. Without the mount namespace the work folder is a real folder on
    disk, bounded only per file (RLIMIT_FSIZE). CPU time, disk bandwidth and page cache are
    not isolated from other jobs.
  * Not a defense against kernel exploits: use a VM/gVisor for adversarial code.
"""

from __future__ import annotations

import ast
import marshal
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("passed", "failed", "timeout", "memory", "killed", "error", "no_code")
_DETAIL = 300          # characters kept in SandboxResult.detail
_KEEP = 64 * 1024      # bytes of stdout / stderr kept per stream (head and tail)
_SETUP_TIMEOUT = 20.0  # seconds for the sandbox itself to come up


@dataclass(frozen=True)
class SandboxResult:
    status: str        # one of STATUSES
    passed: bool       # status == "passed"
    detail: str        # short reason, at most ~300 characters
    duration_s: float  # wall time of the whole job, setup and cleanup included


def _result(status: str, detail: str, started: float) -> SandboxResult:
    detail = " ".join(detail.split())
    if len(detail) > _DETAIL:
        detail = detail[:_DETAIL - 3] + "..."
    return SandboxResult(status, status == "passed", detail, round(time.perf_counter() - started, 4))


# --------------------------------------------------------------------------------------------
# Parent side: probing the isolation mode, launching and supervising one job.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Mode:
    name: str
    argv: tuple[str, ...]  # prefix before the interpreter
    mount: bool            # the bootstrap sets up the read-only filesystem + private tmpfs


_UNSHARE_MODES = (
    ("user+net+mount+pid namespaces", ("-r", "-n", "-m", "-p", "-f", "--kill-child", "--mount-proc"), True),
    ("user+net+pid namespaces", ("-r", "-n", "-p", "-f", "--kill-child"), False),
    ("user+net namespaces", ("-r", "-n"), False),
)
_lock = threading.Lock()
_state: dict = {}
_counter = iter(range(1 << 62))


# `python -c LOADER` reads stdin: 8 bytes of length, the compiled child.py, then the job.
LOADER = ("import marshal, os\nchunks = []\nwhile True:\n    chunk = os.read(0, 1 << 20)\n"
          "    if not chunk:\n        break\n    chunks.append(chunk)\ndata = b''.join(chunks)\n"
          "n = int.from_bytes(data[:8], 'little')\n"
          "exec(marshal.loads(data[8:8 + n]), {'__name__': '__sandbox__', 'JOB_BYTES': data[8 + n:]})\n")


def _child_code() -> bytes:
    """child.py compiled once per process, with its length in front."""
    if "child" not in _state:
        path = Path(__file__).with_name("child.py")
        code = marshal.dumps(compile(path.read_text(), str(path), "exec"))
        _state["child"] = len(code).to_bytes(8, "little") + code
    return _state["child"]


def _pids_cgroup_base() -> str | None:
    """A cgroup directory (child of ours) where per-job cgroups with pids.max can be made."""
    try:
        with open("/proc/self/cgroup") as f:
            own = dict(line.rstrip("\n").split(":", 2)[1:] for line in f)
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split(" - ") for line in f]
    except (OSError, ValueError):
        return None
    candidates = []
    for head, tail in (m for m in mounts if len(m) == 2):
        mountpoint, (fstype, _src, opts) = head.split()[4], tail.split()[:3]
        if fstype == "cgroup" and "pids" in opts.split(","):
            rel = next((p for c, p in own.items() if "pids" in c.split(",")), None)
        elif fstype == "cgroup2":
            rel = own.get("")
        else:
            continue
        if rel is not None:
            candidates.append(mountpoint + rel.rstrip("/"))
    for base in candidates:
        probe = f"{base}/curate-sbx-probe-{os.getpid()}"
        try:
            os.mkdir(probe)
        except OSError:
            continue
        try:
            with open(probe + "/pids.max", "w") as f:
                f.write("8")
            return base
        except OSError:
            continue
        finally:
            try:
                os.rmdir(probe)
            except OSError:
                pass
    return None


def _make_cgroup(max_procs: int) -> str | None:
    base = _state.get("cgroup_base")
    if not base:
        return None
    path = f"{base}/curate-sbx-{os.getpid()}-{next(_counter)}"
    try:
        os.mkdir(path)
        with open(path + "/pids.max", "w") as f:
            f.write(str(max_procs))
        return path
    except OSError:
        _remove_cgroup(path)
        return None


def _cgroup_pids(path: str) -> list[int]:
    try:
        with open(path + "/cgroup.procs") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def _remove_cgroup(path: str) -> None:
    for _ in range(100):
        for pid in _cgroup_pids(path):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)


def _kill_job(pgid: int, cgroup: str | None) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
    for pid in _cgroup_pids(cgroup) if cgroup else ():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _select_mode() -> _Mode:
    """Probe once per process: the strongest mode whose probe job passes is used."""
    with _lock:
        if "mode" in _state:
            return _state["mode"]
        started = time.perf_counter()
        _state["cgroup_base"] = _pids_cgroup_base()
        unshare = shutil.which("unshare")
        modes = [_Mode(n, (unshare, *flags), mount) for n, flags, mount in _UNSHARE_MODES] if unshare else []
        modes.append(_Mode("none", (), False))
        failures = {}
        for mode in modes:
            facts: dict = {}
            res = _run(mode, "x = 1", "assert x == 1", timeout_s=5, memory_mb=256, max_procs=16,
                       max_output_kb=64, file_size_mb=1, guard=True, facts_out=facts)
            if res.passed:
                break
            failures[mode.name] = f"{res.status}: {res.detail}"
        else:
            mode, facts = modes[-1], {}
        _state["mode"], _state["facts"], _state["failures"] = mode, facts, failures
        _state["probe_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return mode


def isolation_report() -> dict:
    """Which protections are active here (probes on first use; cached per process)."""
    mode = _select_mode()
    facts, base = _state["facts"], _state.get("cgroup_base")
    ns = mode.name != "none"
    if facts.get("cgroup") is True:
        process_limit = f"pids cgroup per job (under {base})"
    elif facts.get("outer_uid", 0) != 0:
        process_limit = f"RLIMIT_NPROC (runs as uid {facts['outer_uid']} outside)"
    else:
        process_limit = ("none at kernel level (real root without a usable pids cgroup): "
                         "Python guard, timeout and session kill only")
    return {
        "mode": mode.name,
        "user_namespace": bool(facts.get("user_ns")) and ns,
        "network_namespace": ns,
        "pid_namespace": "-p" in mode.argv,
        "readonly_filesystem": bool(facts.get("readonly_fs")),
        "private_tmpfs_workdir": bool(facts.get("readonly_fs")),
        "host_files_hidden": bool(facts.get("hidden_host_files")),
        "program_and_tests_apart": "two processes; only builtin data crosses between them",
        "capabilities_dropped": facts.get("caps_dropped") is True or facts.get("caps_effective") is False,
        "no_new_privs": bool(facts.get("no_new_privs")),
        "process_limit": process_limit,
        "rlimits": ["CPU", "AS", "NPROC", "FSIZE", "NOFILE=64", "CORE=0"],
        "python_guard": "on by default (guard=True): sockets and DNS, writes/deletes outside the folder, "
                        "process creation, signals outside the job, ctypes",
        "uid_outside": facts.get("outer_uid"),
        "unshare": mode.argv[0] if ns else shutil.which("unshare"),
        "interpreter": sys.executable,
        "kernel": os.uname().release,
        "probe_ms": _state["probe_ms"],
        "weaker_modes_tried": dict(_state["failures"]),
    }


class _Capped:
    """Keeps the first and last `keep // 2` bytes of a stream; counts the rest."""

    def __init__(self, keep: int = _KEEP):
        self.half, self.head, self.tail, self.total = keep // 2, bytearray(), bytearray(), 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        if len(self.tail) > self.half:
            del self.tail[:len(self.tail) - self.half]

    def text(self) -> str:
        gap = "\n[...]\n" if self.total > len(self.head) + len(self.tail) else ""
        return self.head.decode("utf-8", "replace") + gap + self.tail.decode("utf-8", "replace")


def _parse_messages(raw: bytes) -> list[tuple]:
    out = []
    for line in raw.split(b"\n"):
        try:
            msg = ast.literal_eval(line.decode("utf-8", "replace"))
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            continue
        if isinstance(msg, tuple) and msg:
            out.append(msg)
    return out


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


@dataclass
class _Proc:
    """One of the job's two processes, as the supervisor sees it."""
    role: str                    # "program" | "tests"
    popen: subprocess.Popen
    cgroup: str | None
    msg_fd: int                  # its private pipe to us (ready facts; the verdict for "tests")
    out: _Capped = field(default_factory=_Capped)
    err: _Capped = field(default_factory=_Capped)
    msgs: _Capped = field(default_factory=lambda: _Capped(_KEEP * 2))
    exited_at: float | None = None
    rusage: object = None

    def cpu_s(self) -> float:
        return self.rusage.ru_utime + self.rusage.ru_stime if self.rusage else 0.0


def _run(mode: _Mode, program: str, test_code: str, *, timeout_s: float, memory_mb: int, max_procs: int,
         max_output_kb: int, file_size_mb: int, guard: bool, facts_out: dict | None = None,
         streams_out: dict | None = None) -> SandboxResult:
    started = time.perf_counter()
    token = secrets.token_hex(16)
    cpu_s = math.ceil(timeout_s) + 1  # a backstop: the wall clock normally ends the job first
    procs: list[_Proc] = []
    open_fds: set[int] = set()
    workdirs: list[str] = []
    cgroups: list[str] = []

    def pipe() -> tuple[int, int]:
        r, w = os.pipe()
        open_fds.update((r, w))
        return r, w

    def close(fd: int) -> None:
        if fd in open_fds:
            open_fds.discard(fd)
            os.close(fd)

    try:
        to_tests, to_program = pipe(), pipe()
        limits = {"cpu_s": cpu_s, "memory_mb": memory_mb, "max_procs": max_procs,
                  "file_size_mb": file_size_mb, "tmpfs_mb": max(file_size_mb * 4, 16)}
        roles = {"program": (to_program[0], to_tests[1], {"program": program}),
                 "tests": (to_tests[0], to_program[1], {"tests": test_code, "token": token})}
        for role, (chan_in, chan_out, payload) in roles.items():
            workdir = os.path.realpath(tempfile.mkdtemp(prefix="curate-sbx-"))
            workdirs.append(workdir)
            cgroup = _make_cgroup(max_procs)
            if cgroup:
                cgroups.append(cgroup)
            msg_r, msg_w = pipe()
            job = {"role": role, "fd": msg_w, "token": "", "limits": limits, "mount": mode.mount, "guard": guard,
                   "cgroup": cgroup, "chan_in": chan_in, "chan_out": chan_out} | payload
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "TMP": workdir,
                   "TEMP": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
            argv = [*mode.argv, sys.executable, "-I", "-S", "-B", "-c", LOADER]
            popen = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, pass_fds=(msg_w, chan_in, chan_out),
                                     start_new_session=True)
            procs.append(_Proc(role, popen, cgroup, msg_r))
            close(msg_w)
            try:  # the job goes on stdin, so it is never on disk where another job could read it
                popen.stdin.write(_child_code() + marshal.dumps(job))
                popen.stdin.close()
            except BrokenPipeError:
                pass  # it died at once: supervision reports why
        for fd in (*to_tests, *to_program):  # only the two sandboxes hold the call pipes
            close(fd)
        result = _supervise(procs, token, started, timeout_s=timeout_s, cpu_s=cpu_s,
                            max_output=max_output_kb * 1024, facts_out=facts_out)
        if streams_out is not None:  # what the program printed (head and tail of each stream)
            streams_out.update(stdout=procs[0].out.text(), stderr=procs[0].err.text())
        return result
    except Exception as exc:  # a sandbox problem, never the program's fault
        return _result("error", f"sandbox error: {type(exc).__name__}: {exc}", started)
    finally:
        for proc in procs:
            if proc.popen.returncode is None:
                _kill_job(proc.popen.pid, proc.cgroup)
                proc.popen.wait()
            for stream in (proc.popen.stdin, proc.popen.stdout, proc.popen.stderr):
                try:
                    stream.close()
                except OSError:
                    pass
        for fd in list(open_fds):  # each exactly once: a second close could hit another job's fd
            try:
                os.close(fd)
            except OSError:
                pass
        for cgroup in cgroups:
            _remove_cgroup(cgroup)
        for workdir in workdirs:
            _rmtree(workdir)


def _rmtree(path: str) -> None:
    def fix(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass
    shutil.rmtree(path, onerror=fix)


def _supervise(procs: list[_Proc], token: str, started: float, *, timeout_s: float, cpu_s: int,
               max_output: int, facts_out: dict | None) -> SandboxResult:
    program, tests = procs
    sel = selectors.DefaultSelector()
    for proc in procs:
        for fileobj, sink in ((proc.popen.stdout, proc.out), (proc.popen.stderr, proc.err), (proc.msg_fd, proc.msgs)):
            sel.register(fileobj, selectors.EVENT_READ, sink)
    launched = time.monotonic()
    ready_at = None
    killed_for = None  # "timeout" | "setup" | "output"
    idle = 0.001

    def kill_all() -> None:
        for p in procs:
            _kill_job(p.popen.pid, p.cgroup)

    while True:
        now = time.monotonic()
        for proc in procs:
            if proc.exited_at is None and os.waitid(os.P_PID, proc.popen.pid,
                                                    os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                proc.exited_at = now
                _kill_job(proc.popen.pid, proc.cgroup)  # its leftovers (pid not reaped yet)
                if proc is tests:  # the verdict is in (or never will be): the program is done too
                    kill_all()
        if tests.exited_at is not None and (not sel.get_map() or now - tests.exited_at > 1.0):
            break
        if tests.exited_at is None and killed_for is None:
            if ready_at is None and all(b"\n" in p.msgs.head for p in procs):
                ready_at = now
            if ready_at is None and now - launched > _SETUP_TIMEOUT:
                killed_for = "setup"
            elif ready_at is not None and now - ready_at > timeout_s:
                killed_for = "timeout"
            elif sum(p.out.total + p.err.total for p in procs) > max_output:
                killed_for = "output"
            if killed_for:
                kill_all()
        wait = 0.05 if ready_at is None else min(0.1, max(0.005, timeout_s - (now - ready_at)))
        if not sel.get_map():  # every pipe closed, the processes are exiting (or linger): poll with backoff
            idle = min(idle * 2, wait)
            time.sleep(idle)
            continue
        for key, _ in sel.select(wait):
            data = os.read(key.fd, 65536)
            if data:
                key.data.add(data)
            else:
                sel.unregister(key.fileobj)
    sel.close()
    for proc in procs:
        _, wstatus, proc.rusage = os.wait4(proc.popen.pid, 0)
        proc.popen.returncode = os.waitstatus_to_exitcode(wstatus)

    readies = []
    for proc in procs:
        msgs = _parse_messages(bytes(proc.msgs.head + proc.msgs.tail))
        readies.append(next((m[1] for m in msgs if m[0] == "ready" and len(m) == 2 and isinstance(m[1], dict)), None))
    if facts_out is not None and readies[0]:
        facts_out.update(readies[0])
    test_msgs = _parse_messages(bytes(tests.msgs.head + tests.msgs.tail))
    final = next((m for m in reversed(test_msgs) if m[0] == token and len(m) == 3), None)
    if killed_for == "output":
        return _result("killed", f"output exceeded {max_output // 1024} KB", started)
    if killed_for == "timeout" and final is None:
        return _result("timeout", f"exceeded {timeout_s:g} s", started)
    if final is not None:
        status, detail = str(final[1]), str(final[2])
        if status == "program_gone":  # why the program stopped answering: its own exit says
            if program.exited_at is not None and program.exited_at <= tests.exited_at:
                return _ended(program, cpu_s, started)
            return _result("failed", detail, started)
        if status == "passed" and tests.popen.returncode != 0:
            return _ended(tests, cpu_s, started, after_pass=True)
        return _result(status if status in ("passed", "failed", "memory", "timeout") else "failed", detail, started)
    not_ready = [p.role for p, r in zip(procs, readies) if r is None]
    if not_ready:
        what = "did not start in time" if killed_for == "setup" else "failed to start"
        proc = procs[0] if "program" in not_ready else tests
        tail = proc.err.text()[-_DETAIL:].strip()
        return _result("error", f"sandbox ({proc.role}) {what}: {tail or f'exit {proc.popen.returncode}'}", started)
    return _ended(tests, cpu_s, started)


def _ended(proc: _Proc, cpu_s: int, started: float, after_pass: bool = False) -> SandboxResult:
    """A process that ended without a verdict (or after one, abnormally): why, from its exit."""
    code = proc.popen.returncode
    how = f"killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
    if after_pass:
        return _result("killed", f"tests passed but the sandbox process was {how}; not counted", started)
    stderr_tail = proc.err.text()[-_DETAIL:]
    if code == 124 or proc.cpu_s() >= cpu_s - 0.05:
        return _result("timeout", f"CPU time limit ({cpu_s} s) exceeded", started)
    if "MemoryError" in stderr_tail:
        return _result("memory", f"MemoryError: {stderr_tail}", started)
    where = "" if proc.role == "tests" else " (the program's process)"
    status = "killed" if code < 0 else "failed"
    return _result(status, f"{how} before the tests finished{where}; {stderr_tail}".rstrip("; "), started)


def run_tests(program: str | None, test_code: str, *, timeout_s: float = 10, memory_mb: int = 512,
              max_procs: int = 16, max_output_kb: int = 1024, file_size_mb: int = 16,
              guard: bool = True) -> SandboxResult:
    """Run `program` then `test_code` (e.g. MBPP asserts, or HumanEval's check + call) in a sandbox.

    timeout_s: wall clock for user code (sandbox start-up not counted); the CPU-time limit is
    one second more, rounded up (a backstop). memory_mb: address space per process. max_procs: processes + threads.
    max_output_kb: stdout+stderr beyond this kills the job ("killed"). file_size_mb: per file.
    guard: the Python-level guard (leave on; off only to test the kernel-level layers).
    Never raises: sandbox problems come back as status "error".
    """
    started = time.perf_counter()
    if program is None or not program.strip():
        return _result("no_code", "no program found in the answer", started)
    if not test_code or not test_code.strip():
        return _result("error", "no test code given (a program without tests proves nothing)", started)
    try:
        mode = _select_mode()
    except Exception as exc:
        return _result("error", f"sandbox error: {type(exc).__name__}: {exc}", started)
    return _run(mode, program, test_code, timeout_s=timeout_s, memory_mb=memory_mb, max_procs=max_procs,
                max_output_kb=max_output_kb, file_size_mb=file_size_mb, guard=guard)


@dataclass(frozen=True)
class ProgramRun:
    """A program run for its output (run_program): the sandbox verdict and what it printed."""
    result: SandboxResult
    stdout: str
    stderr: str


def run_program(program: str, *, timeout_s: float = 10, memory_mb: int = 512, max_procs: int = 16,
                max_output_kb: int = 256, file_size_mb: int = 16) -> ProgramRun:
    """Run `program` alone in the same sandbox as run_tests and return its stdout and stderr (the
    agentic Python executor, pipeline/agentic/envs/python_exec.py). The program runs as module
    `solution`; output still in Python's buffers when the job is killed (a timeout) is lost, so a
    caller that wants partial output sets line buffering itself. result.status is "passed" when
    the program loaded, "failed" when it raised (detail: the error), or timeout / memory / killed.
    Never raises."""
    streams: dict = {}
    started = time.perf_counter()
    if not program.strip():
        return ProgramRun(_result("no_code", "no program given", started), "", "")
    try:
        mode = _select_mode()
    except Exception as exc:
        return ProgramRun(_result("error", f"sandbox error: {type(exc).__name__}: {exc}", started), "", "")
    result = _run(mode, program, "pass", timeout_s=timeout_s, memory_mb=memory_mb, max_procs=max_procs,
                  max_output_kb=max_output_kb, file_size_mb=file_size_mb, guard=True, streams_out=streams)
    return ProgramRun(result, streams.get("stdout", ""), streams.get("stderr", ""))


def run_many(jobs: list[tuple[str | None, str]], *, workers: int = 2, **limits) -> list[SandboxResult]:
    """run_tests over (program, test_code) pairs, at most `workers` at a time, results in order.

    Threads are enough: each job is its own process and the threads only wait on it.
    """
    _select_mode()
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda job: run_tests(job[0], job[1], **limits), jobs))
