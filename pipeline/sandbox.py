"""Run a sample's program against a question's tests in a throwaway sandbox process.

    result = run_tests(program, test_code, timeout_s=10, memory_mb=512)
    result.status  # passed | failed | timeout | memory | killed | error | no_code

Each job is a fresh `python -I -S -B` (stdlib only, no site-packages, no .pyc writes) started in
its own session, with a fresh temporary folder as cwd, HOME and TMPDIR, removed afterwards
whatever happens. A small bootstrap (`_child_main`, sent with `-c`) sets up the layers below,
then runs the program and the tests in one namespace (`__name__` is "solution", so demo code
under `if __name__ == "__main__":` does not run). A job passes only if the bootstrap reports,
on a private pipe and with a random per-job token, that it reached the end of the tests, and
the sandbox process then exits cleanly: `sys.exit(0)`, `os._exit(0)`, a killed process or a
crash before that is never a pass.

Layers, strongest first (`isolation_report()` says which are active on this machine; the
best working mode is probed once per process):

  namespaces (`unshare -r -n -m -p -f --kill-child --mount-proc`, unprivileged):
    network   empty network namespace: no interfaces but a down loopback, so no connection
              anywhere, local or remote.
    mount     the whole filesystem is remounted read-only (recursive mount_setattr) and the
              work folder is a private size-capped tmpfs: nothing can be written, created,
              deleted or renamed outside it, and what is written inside vanishes with the job.
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
  * The pass token lives in the same process as the untrusted code, so a program written to
    cheat can find it and forge a pass. It protects against accidental passes only.
  * Reads are not restricted: the program can read whatever the user running the pipeline
    can read (with no network, it can only leak it into its own output and the DB's detail).
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
import inspect
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
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

STATUSES = ("passed", "failed", "timeout", "memory", "killed", "error", "no_code")
_DETAIL = 300          # characters kept in SandboxResult.detail
_KEEP = 64 * 1024      # bytes of stdout / stderr kept per stream (head and tail)
_SETUP_TIMEOUT = 20.0  # seconds for the sandbox itself to come up
_JOB_FILE = "job.marshal"


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
# The bootstrap that runs inside the sandbox (sent as `python -c`; stdlib only, imports kept
# cheap: no json/re/enum/signal/traceback, which cost tens of ms to import).
# --------------------------------------------------------------------------------------------

def _child_main():  # pragma: no cover - runs in the sandbox process
    import _signal
    import builtins
    import marshal
    import os
    import resource
    import sys

    wd = os.getcwd()
    with open("job.marshal", "rb") as f:
        job = marshal.load(f)
    os.unlink("job.marshal")
    fd, token, limits = job["fd"], job["token"], job["limits"]
    write, exit_, getpid, repr_ = os.write, os._exit, os.getpid, repr  # the program may patch the originals
    main_pid = getpid()

    def send(*msg):
        write(fd, (repr_(msg) + "\n").encode("utf-8", "backslashreplace"))

    def cap_eff():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
        return 0

    facts = {"pid": main_pid, "uid": os.getuid()}
    try:
        with open("/proc/self/uid_map") as f:
            first = f.read().split()
        facts["outer_uid"] = int(first[1]) + os.getuid() - int(first[0])
        facts["user_ns"] = first[:3] != ["0", "0", "4294967295"]
    except (OSError, IndexError, ValueError):
        facts["outer_uid"], facts["user_ns"] = os.getuid(), False

    try:
        if job["cgroup"]:
            try:
                with open(job["cgroup"] + "/cgroup.procs", "w") as f:
                    f.write("0")
                facts["cgroup"] = True
            except OSError as exc:
                facts["cgroup"] = f"attach failed: {exc}"
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)

        def check(ret, what):
            if ret != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"{what}: {os.strerror(err)}")

        if job["mount"]:
            # Private tmpfs on the work folder, everything else read-only (recursively).
            class MountAttr(ctypes.Structure):
                _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                            ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]

            def setattr_(path, flags, attr):
                check(libc.syscall(ctypes.c_long(442), ctypes.c_long(-100), ctypes.c_char_p(path),  # mount_setattr
                                   ctypes.c_long(flags), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))),
                      "mount_setattr " + path.decode())

            wdb = wd.encode()
            opts = f"size={limits['tmpfs_mb']}m,mode=0700".encode()
            check(libc.mount(b"tmpfs", wdb, b"tmpfs", ctypes.c_ulong(2 | 4), opts), "mount tmpfs")  # nosuid|nodev
            setattr_(b"/", 0x8000, MountAttr(1, 0, 0, 0))   # AT_RECURSIVE, set MOUNT_ATTR_RDONLY
            setattr_(wdb, 0, MountAttr(0, 1, 0, 0))         # the work folder stays writable
            os.chdir(wd)
            facts["readonly_fs"] = True
        try:
            # no_new_privs: setuid programs (sudo) and file capabilities grant nothing from here on.
            check(libc.prctl(38, 1, 0, 0, 0), "no_new_privs")              # PR_SET_NO_NEW_PRIVS
            facts["no_new_privs"] = True
            if cap_eff():  # root inside the user namespace (or real root): drop every capability
                for cap in range(64):                                     # PR_CAPBSET_DROP
                    if libc.prctl(24, cap, 0, 0, 0) != 0:
                        break
                check(libc.prctl(28, 0xEF, 0, 0, 0), "securebits")         # NOROOT, NO_SETUID_FIXUP, locked
                libc.prctl(47, 4, 0, 0, 0)                                 # PR_CAP_AMBIENT_CLEAR_ALL

                class Header(ctypes.Structure):
                    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

                class Data(ctypes.Structure):
                    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                                ("inheritable", ctypes.c_uint32)]

                check(libc.capset(ctypes.byref(Header(0x20080522, 0)), ctypes.byref((Data * 2)())), "capset")
                if cap_eff():
                    raise OSError("capabilities still effective after capset")
                facts["caps_dropped"] = True
        except (OSError, AttributeError) as exc:  # AttributeError: a libc without capset
            if job["mount"]:  # with capabilities left, the program could undo the read-only remount
                raise
            facts["caps_dropped"] = f"failed: {exc}"
        facts["caps_effective"] = cap_eff() != 0

        def limit(res, soft, hard=None):
            hard = soft if hard is None else hard
            cur_hard = resource.getrlimit(res)[1]
            if cur_hard != resource.RLIM_INFINITY:
                soft, hard = min(soft, cur_hard), min(hard, cur_hard)
            resource.setrlimit(res, (soft, hard))

        limit(resource.RLIMIT_CPU, limits["cpu_s"], limits["cpu_s"] + 1)
        limit(resource.RLIMIT_AS, limits["memory_mb"] << 20)
        limit(resource.RLIMIT_NPROC, limits["max_procs"])
        limit(resource.RLIMIT_FSIZE, limits["file_size_mb"] << 20)
        limit(resource.RLIMIT_NOFILE, 64)
        limit(resource.RLIMIT_CORE, 0)

        def on_xcpu(signum, frame):
            if getpid() == main_pid:
                send(token, "timeout", f"CPU time limit ({limits['cpu_s']} s) exceeded")
            exit_(0)

        _signal.signal(_signal.SIGXCPU, on_xcpu)

        if job["guard"]:
            import _posixsubprocess
            import _socket
            import io
            import posixpath

            def deny(what):
                raise PermissionError(f"sandbox: {what} is not allowed")

            class NoSocket(_socket.socket):
                __slots__ = ()  # socket.socket (stdlib) subclasses this and adds __weakref__ itself

                def __init__(self, *a, **k):
                    deny("network access")

            _socket.socket = _socket.SocketType = NoSocket
            for name in ("socketpair", "getaddrinfo", "getnameinfo", "gethostbyname", "gethostbyname_ex",
                         "gethostbyaddr"):  # name lookups would leak through DNS
                setattr(_socket, name, lambda *a, **k: deny("network access"))
            real_wd = posixpath.realpath(wd)
            real_open, real_os_open, readlink = builtins.open, os.open, os.readlink

            def inside(path, dir_fd=None):
                if isinstance(path, int):
                    return True
                p = os.fsdecode(path)
                if dir_fd is not None and not p.startswith("/"):
                    p = posixpath.join(readlink(f"/proc/self/fd/{dir_fd}"), p)
                p = posixpath.realpath(posixpath.abspath(p))
                return p == real_wd or p.startswith(real_wd + "/") or p == "/dev/null"

            def guard_path(fn, name, npaths=1):
                def wrapper(*args, **kw):
                    fds = (kw.get("src_dir_fd", kw.get("dir_fd")), kw.get("dst_dir_fd", kw.get("dir_fd")))
                    for i, path in enumerate(args[:npaths]):
                        if not inside(path, fds[min(i, 1)]):
                            deny(f"{name} outside the work folder ({path})")
                    return fn(*args, **kw)
                return wrapper

            def guarded_open(file, mode="r", *args, **kw):
                if any(c in mode for c in "wax+") and not inside(file):
                    deny(f"writing outside the work folder ({file})")
                return real_open(file, mode, *args, **kw)

            write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

            def guarded_os_open(path, flags, *args, **kw):
                if flags & write_flags and not inside(path, kw.get("dir_fd")):
                    deny(f"writing outside the work folder ({path})")
                return real_os_open(path, flags, *args, **kw)

            builtins.open = io.open = guarded_open
            sys.modules["_io"].open = guarded_open
            os.open = guarded_os_open
            for name in ("remove", "unlink", "rmdir", "mkdir", "chmod", "chown", "lchown", "truncate",
                         "utime", "mkfifo", "mknod", "removedirs"):
                if hasattr(os, name):
                    setattr(os, name, guard_path(getattr(os, name), name))
            for name in ("rename", "replace", "link"):
                setattr(os, name, guard_path(getattr(os, name), name, npaths=2))
            real_symlink = os.symlink

            def guarded_symlink(src, dst, *args, **kw):
                if not inside(dst, kw.get("dir_fd")):
                    deny(f"symlink outside the work folder ({dst})")
                return real_symlink(src, dst, *args, **kw)

            os.symlink = guarded_symlink
            def refuse(name):
                return lambda *a, **k: deny("os." + name)

            for name in ("fork", "forkpty", "system", "execv", "execve", "posix_spawn", "posix_spawnp",
                         "setsid", "setpgid", "setpgrp"):
                if hasattr(os, name):
                    setattr(os, name, refuse(name))
            _posixsubprocess.fork_exec = lambda *a, **k: deny("starting processes")
            real_kill, real_killpg, getpgid = os.kill, os.killpg, os.getpgid

            def own_group(pid):
                try:
                    return getpgid(pid) == getpgid(0)
                except OSError:
                    return False

            def guarded_kill(pid, sig):
                if not (pid == 0 or (pid > 0 and own_group(pid)) or (pid < -1 and -pid == getpgid(0))):
                    deny("signalling processes outside the sandbox")
                return real_kill(pid, sig)

            def guarded_killpg(pgid, sig):
                if pgid != getpgid(0):
                    deny("signalling processes outside the sandbox")
                return real_killpg(pgid, sig)

            os.kill, os.killpg = guarded_kill, guarded_killpg
            for name in ("ctypes", "_ctypes"):
                sys.modules[name] = None
            facts["guard"] = True
    except BaseException as exc:
        sys.stderr.write(f"sandbox setup failed: {type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
        exit_(70)

    send("ready", facts)
    sources = {"<program>": job["program"], "<tests>": job["tests"]}

    def describe(exc, stage):
        name = type(exc).__name__
        if isinstance(exc, SystemExit):
            return f"SystemExit({exc.code!r}) raised in the {stage} before the tests finished"
        try:
            msg = str(exc)[:120]
        except BaseException:
            msg = "?"
        if isinstance(exc, SyntaxError) and exc.filename in sources:
            return f"SyntaxError in {exc.filename.strip('<>')} line {exc.lineno}: {exc.msg}"
        deepest = {}
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename in sources:
                deepest[tb.tb_frame.f_code.co_filename] = tb.tb_lineno
            tb = tb.tb_next
        text = name + (": " + msg if msg else "")
        for where in ("<tests>", "<program>"):
            if where in deepest:
                n = deepest[where]
                lines = sources[where].splitlines()
                src = lines[n - 1].strip()[:100] if 0 < n <= len(lines) else ""
                text += f" at {where.strip('<>')} line {n}" + (f": {src}" if src else "")
                break
        return text

    g = {"__name__": "solution", "__builtins__": builtins}
    status, detail, stage = "passed", "all tests passed", "program"
    try:
        code = compile(job["program"], "<program>", "exec")
        exec(code, g)
        stage = "tests"
        code = compile(job["tests"], "<tests>", "exec")
        exec(code, g)
    except BaseException as exc:  # everything the program raises, SystemExit included, is a failure
        if getpid() != main_pid:
            exit_(1)
        status = "memory" if isinstance(exc, MemoryError) else "failed"
        try:
            detail = describe(exc, stage)
        except BaseException:
            detail = type(exc).__name__
    if getpid() != main_pid:  # a forked child of the program ran on into the harness
        exit_(0)
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass
    send(token, status, detail)
    exit_(0)


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


def _bootstrap_source() -> str:
    if "boot" not in _state:
        _state["boot"] = textwrap.dedent(inspect.getsource(_child_main)) + "\n_child_main()\n"
    return _state["boot"]


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


def _run(mode: _Mode, program: str, test_code: str, *, timeout_s: float, memory_mb: int, max_procs: int,
         max_output_kb: int, file_size_mb: int, guard: bool, facts_out: dict | None = None) -> SandboxResult:
    started = time.perf_counter()
    token = secrets.token_hex(16)
    cpu_s = math.ceil(timeout_s) + 1  # a backstop: the wall clock normally ends the job first
    workdir = cgroup = proc = None
    read_fd = write_fd = -1
    try:
        workdir = os.path.realpath(tempfile.mkdtemp(prefix="curate-sbx-"))
        cgroup = _make_cgroup(max_procs)
        read_fd, write_fd = os.pipe()
        limits = {"cpu_s": cpu_s, "memory_mb": memory_mb, "max_procs": max_procs,
                  "file_size_mb": file_size_mb, "tmpfs_mb": max(file_size_mb * 4, 16)}
        with open(os.path.join(workdir, _JOB_FILE), "wb") as f:
            marshal.dump({"fd": write_fd, "token": token, "limits": limits, "mount": mode.mount, "guard": guard,
                          "cgroup": cgroup, "program": program, "tests": test_code}, f)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "TMP": workdir,
               "TEMP": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        argv = [*mode.argv, sys.executable, "-I", "-S", "-B", "-c", _bootstrap_source()]
        proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, pass_fds=(write_fd,), start_new_session=True)
        os.close(write_fd)
        write_fd = -1
        return _supervise(proc, read_fd, token, cgroup, started, timeout_s=timeout_s, cpu_s=cpu_s,
                          max_output=max_output_kb * 1024, facts_out=facts_out)
    except Exception as exc:  # a sandbox problem, never the program's fault
        return _result("error", f"sandbox error: {type(exc).__name__}: {exc}", started)
    finally:
        if proc is not None and proc.returncode is None:
            _kill_job(proc.pid, cgroup)
            proc.wait()
        for fd in (read_fd, write_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if proc is not None:
            for stream in (proc.stdout, proc.stderr):
                stream.close()
        if cgroup:
            _remove_cgroup(cgroup)
        if workdir:
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


def _supervise(proc: subprocess.Popen, read_fd: int, token: str, cgroup: str | None, started: float, *,
               timeout_s: float, cpu_s: int, max_output: int, facts_out: dict | None) -> SandboxResult:
    out, err, results = _Capped(), _Capped(), _Capped(_KEEP * 2)
    sel = selectors.DefaultSelector()
    for fileobj, sink in ((proc.stdout, out), (proc.stderr, err), (read_fd, results)):
        sel.register(fileobj, selectors.EVENT_READ, sink)
    launched = time.monotonic()
    ready_at = None
    exited_at = None
    killed_for = None  # "timeout" | "setup" | "output"
    idle = 0.001
    while True:
        now = time.monotonic()
        if exited_at is None and os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            exited_at = now
            _kill_job(proc.pid, cgroup)  # leftovers in the session / cgroup (pid not reaped yet)
        if exited_at is not None and (not sel.get_map() or now - exited_at > 1.0):
            break
        if exited_at is None and killed_for is None:
            if ready_at is None and b"\n" in results.head:
                ready_at = now
            if ready_at is None and now - launched > _SETUP_TIMEOUT:
                killed_for = "setup"
            elif ready_at is not None and now - ready_at > timeout_s:
                killed_for = "timeout"
            elif out.total + err.total > max_output:
                killed_for = "output"
            if killed_for:
                _kill_job(proc.pid, cgroup)
        wait = 0.05 if ready_at is None else min(0.1, max(0.005, timeout_s - (now - ready_at)))
        if not sel.get_map():  # every pipe closed, the process is exiting (or lingers): poll with backoff
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
    _, wstatus, rusage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(wstatus)

    messages = _parse_messages(bytes(results.head + results.tail))
    ready = next((m[1] for m in messages if m[0] == "ready" and len(m) == 2 and isinstance(m[1], dict)), None)
    final = next((m for m in reversed(messages) if m[0] == token and len(m) == 3), None)
    if facts_out is not None and ready:
        facts_out.update(ready)
    stderr_tail = err.text()[-_DETAIL:]
    if killed_for == "output":
        return _result("killed", f"output exceeded {max_output // 1024} KB", started)
    if killed_for == "timeout" and final is None:
        return _result("timeout", f"exceeded {timeout_s:g} s", started)
    if final is not None:
        status = final[1] if final[1] in ("passed", "failed", "memory", "timeout") else "failed"
        if status == "passed" and proc.returncode != 0:  # e.g. the program killed its supervisor
            code = proc.returncode
            how = f"killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
            return _result("killed", f"tests passed but the sandbox process was {how}; not counted", started)
        return _result(status, str(final[2]), started)
    if ready is None:
        what = "did not start in time" if killed_for == "setup" else "failed to start"
        return _result("error", f"sandbox {what}: {stderr_tail.strip() or f'exit {proc.returncode}'}", started)
    if rusage.ru_utime + rusage.ru_stime >= cpu_s - 0.05:
        return _result("timeout", f"CPU time limit ({cpu_s} s) exceeded", started)
    if "MemoryError" in stderr_tail:
        return _result("memory", f"MemoryError: {stderr_tail}", started)
    code = proc.returncode
    how = f"killed by {_signal_name(-code)}" if code < 0 else f"exited with code {code}"
    status = "killed" if code < 0 else "failed"
    return _result(status, f"{how} before the tests finished; {stderr_tail}".rstrip("; "), started)


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


def run_many(jobs: list[tuple[str | None, str]], *, workers: int = 2, **limits) -> list[SandboxResult]:
    """run_tests over (program, test_code) pairs, at most `workers` at a time, results in order.

    Threads are enough: each job is its own process and the threads only wait on it.
    """
    _select_mode()
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda job: run_tests(job[0], job[1], **limits), jobs))
