"""The code that runs inside a sandbox process (stdlib only; compiled once by the supervisor and
sent on stdin ahead of the job, since compiling it in every process costs ~13 ms).

A job is two such processes, started apart, that share nothing but two pipes:

  program  runs the untrusted program, then serves calls: the tests' `add(2, 2)` arrives as
           data, runs here, and the result goes back as data (builtin types only).
  tests    runs the trusted test code. The names the program defined are stand-ins that
           forward calls to the program process; what comes back is decoded into fresh
           builtin objects, so `==`, `bool()`, builtins, `assert`, frames and the harness
           itself are out of the program's reach. Only this process reports a verdict, on a
           pipe the program never holds.

So a program can only pass by returning the right values. Objects of the program's own
classes come back as opaque handles (calls and attribute reads go back to the program;
equality is identity), never as objects whose methods run in the tests process.

The job (a marshal dict) comes on stdin too, so it never touches the disk.
Imports are kept cheap: no json/re/enum/traceback (tens of ms each at start-up).
"""


# ------------------------------------------------------------------------------ the wire format
# A value is sent as a marshal of: scalars (None, bool, int, float, complex, str, bytes) as
# themselves, and every container as a tagged tuple (TAG, items...). Decoding checks the exact
# type of every node, so no code object or unknown type gets through.

def encode(x, handle=None, depth=0):
    """Builtin value -> wire form. `handle(obj)` turns anything else into a reference, or raises."""
    t = type(x)
    if x is None or t in (bool, int, float, complex, str, bytes):
        return x
    if depth > 500:
        raise ValueError("value nested more than 500 levels deep")
    d = depth + 1
    if t is list:
        return ("L", *[encode(v, handle, d) for v in x])
    if t is tuple:
        return ("T", *[encode(v, handle, d) for v in x])
    if t is dict:
        return ("D", *[(encode(k, handle, d), encode(v, handle, d)) for k, v in x.items()])
    if t is set:
        return ("S", *[encode(v, handle, d) for v in x])
    if t is frozenset:
        return ("F", *[encode(v, handle, d) for v in x])
    if t is bytearray:
        return ("BA", bytes(x))
    if t is range:
        return ("R", x.start, x.stop, x.step)
    name = t.__module__ + "." + t.__qualname__
    if name in ("collections.deque", "collections.OrderedDict", "collections.Counter",
                "fractions.Fraction", "decimal.Decimal"):
        return _encode_stdlib(name, x, handle, d)
    if name in ("builtins.dict_keys", "builtins.dict_values", "builtins.dict_items"):
        return ("K" if name.endswith("keys") else "V" if name.endswith("values") else "IT",
                *[encode(v, handle, d) for v in x])
    if handle is None:
        raise TypeError(f"a {t.__name__} cannot be passed between the tests and the program")
    # Subclasses of builtin types (IntEnum, namedtuple, defaultdict, ...) travel as their base
    # type's value: the base type's own methods read them, so their overrides never run.
    # (issubclass of the real type: isinstance() can be fooled by a `__class__` property)
    for base, conv in ((int, int.__index__), (float, float.__float__), (str, str.__str__),
                       (bytes, bytes.__bytes__)):
        if issubclass(t, base):
            return encode(base(conv(x)), handle, d)
    if issubclass(t, tuple):
        return ("T", *[encode(v, handle, d) for v in tuple.__iter__(x)])
    if issubclass(t, list):
        return ("L", *[encode(v, handle, d) for v in list.__iter__(x)])
    if issubclass(t, dict):
        return ("D", *[(encode(k, handle, d), encode(v, handle, d)) for k, v in dict.items(x)])
    if issubclass(t, (set, frozenset)):
        items = set.__iter__(x) if issubclass(t, set) else frozenset.__iter__(x)
        return ("S" if issubclass(t, set) else "F", *[encode(v, handle, d) for v in items])
    if _is_iterator(x):  # a generator, map, zip, ...: its items, as an iterator again
        return ("I", *[encode(v, handle, d) for v in x])
    return handle(x)


def _is_iterator(x):
    t = type(x)
    return hasattr(t, "__next__") and hasattr(t, "__iter__")


def _encode_stdlib(name, x, handle, d):
    if name == "collections.deque":
        return ("Q", *[encode(v, handle, d) for v in x])
    if name == "fractions.Fraction":
        return ("FR", int(x.numerator), int(x.denominator))
    if name == "decimal.Decimal":
        return ("DE", str(x))
    tag = "OD" if name == "collections.OrderedDict" else "C"
    return (tag, *[(encode(k, handle, d), encode(v, handle, d)) for k, v in dict.items(x)])


_SCALARS = (type(None), bool, int, float, complex, str, bytes)


def decode(w, remote=None, depth=0):
    """Wire form -> fresh builtin objects. `remote(ref)` makes the stand-in for a reference."""
    t = type(w)
    if t in _SCALARS:
        return w
    if t is not tuple or not w or type(w[0]) is not str or depth > 500:
        raise ValueError("malformed value from the other process")
    tag, items, d = w[0], w[1:], depth + 1
    if tag in ("L", "T", "S", "F", "Q", "I", "K", "V"):
        vals = [decode(v, remote, d) for v in items]
        if tag == "L":
            return vals
        if tag == "T":
            return tuple(vals)
        if tag == "S":
            return set(vals)
        if tag == "F":
            return frozenset(vals)
        if tag == "I":
            return iter(vals)
        if tag == "K":
            return dict.fromkeys(vals).keys()
        if tag == "V":
            return dict(enumerate(vals)).values()
        import collections
        return collections.deque(vals)
    if tag in ("D", "OD", "C", "IT"):
        pairs = []
        for p in items:
            if type(p) is not tuple or len(p) != 2:
                raise ValueError("malformed mapping from the other process")
            pairs.append((decode(p[0], remote, d), decode(p[1], remote, d)))
        if tag == "D":
            return dict(pairs)
        if tag == "IT":
            return dict(pairs).items()
        import collections
        return collections.OrderedDict(pairs) if tag == "OD" else collections.Counter(dict(pairs))
    if tag == "BA" and len(items) == 1 and type(items[0]) is bytes:
        return bytearray(items[0])
    if tag == "R" and len(items) == 3 and all(type(v) is int for v in items):
        return range(*items)
    if tag == "FR" and len(items) == 2 and all(type(v) is int for v in items) and items[1]:
        import fractions
        return fractions.Fraction(items[0], items[1])
    if tag == "DE" and len(items) == 1 and type(items[0]) is str and len(items[0]) < 10000:
        import decimal
        return decimal.Decimal(items[0])
    if tag in ("G", "H") and remote is not None and len(items) == 2 and all(type(v) is str for v in items):
        return remote(tag, items[0], items[1])
    raise ValueError(f"unknown value tag {tag[:20]!r} from the other process")


_MAX_FRAME = 256 << 20


def send_frame(fd, obj, write):
    import marshal
    data = marshal.dumps(obj)
    if len(data) > _MAX_FRAME:
        raise ValueError(f"value too large to pass ({len(data) >> 20} MB)")
    data = len(data).to_bytes(8, "little") + data
    view = memoryview(data)
    while view:
        view = view[write(fd, view):]


def recv_frame(fd, read):
    """The next frame, or None at end of file."""
    import marshal
    head = _read_exactly(fd, 8, read)
    if head is None:
        return None
    size = int.from_bytes(head, "little")
    if size > _MAX_FRAME:
        raise ValueError("oversized frame from the other process")
    body = _read_exactly(fd, size, read)
    if body is None:
        return None
    return marshal.loads(body)


def _read_exactly(fd, n, read):
    chunks, got = [], 0
    while got < n:
        chunk = read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------ error text

def describe(exc, stage, sources):
    """One line: the exception and where in the program or the tests it was raised."""
    name = type(exc).__name__
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) raised in the {stage} before the tests finished"
    try:
        msg = str(exc)[:160]
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


def builtin_exception_name(exc):
    """The nearest builtin exception class of `exc` (a program's `class E(ValueError)` -> ValueError)."""
    import builtins
    for cls in type(exc).__mro__:
        if cls.__module__ == "builtins" and getattr(builtins, cls.__name__, None) is cls:
            return cls.__name__
    return "Exception"


# ------------------------------------------------------------------------------ the program side

def serve_program(job, chan_in, chan_out, read, write):
    """Run the program, send what it defined, then answer calls until the tests hang up."""
    import builtins
    import sys
    import types

    sources = {"<program>": job["program"]}
    objects, by_id = {}, {}

    def handle(obj):
        key = by_id.get(id(obj))
        if key is None:
            key = str(len(objects))
            objects[key], by_id[id(obj)] = obj, key
        return ("H", key, type(obj).__name__)

    def resolve(kind, key, _name):
        return g[key] if kind == "G" else objects[key]

    def failure(exc, stage):
        status = "memory" if isinstance(exc, MemoryError) else "failed"
        try:
            detail = describe(exc, stage, sources)
        except BaseException:
            detail = type(exc).__name__
        try:
            message = str(exc)[:2000]
        except BaseException:
            message = ""
        return ("raise", builtin_exception_name(exc), message, detail, status)

    g = {"__name__": "solution", "__builtins__": builtins}
    try:
        exec(compile(job["program"], "<program>", "exec"), g)
        manifest = []
        for name, value in list(g.items()):
            if name.startswith("__"):
                continue
            if isinstance(value, types.ModuleType):
                manifest.append((name, "module", value.__name__))
            elif callable(value):
                manifest.append((name, "callable", type(value).__name__))
            else:
                try:
                    manifest.append((name, "value", encode(value)))
                except (TypeError, ValueError, RecursionError):
                    manifest.append((name, "object", type(value).__name__))
        reply = ("defined", tuple(manifest))
    except BaseException as exc:  # SystemExit included: a program that does not load fails
        reply = failure(exc, "program")
    send_frame(chan_out, reply, write)
    if reply[0] != "defined":
        return
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    while True:
        request = recv_frame(chan_in, read)
        if request is None:
            return
        op, (kind, key, _name) = request[0], request[1]
        try:
            target = resolve(kind, key, _name)
            if op == "getattr":
                reply = ("ok", encode(getattr(target, request[2]), handle), ())
            else:
                args = decode(request[2], resolve)
                kwargs = decode(request[3], resolve)
                result = target(*args, **kwargs)
                # Arguments changed in place (a list sorted by the function) go back too.
                changed = tuple((i, encode(a, handle)) for i, a in enumerate(args)
                                if type(a) in (list, dict, set, bytearray))
                reply = ("ok", encode(result, handle), changed)
        except BaseException as exc:
            reply = failure(exc, "program")
        try:
            send_frame(chan_out, reply, write)
        except (TypeError, ValueError, RecursionError) as exc:  # unmarshallable: should not happen
            send_frame(chan_out, failure(exc, "program"), write)


# ------------------------------------------------------------------------------ the tests side

def names_used(code):
    """Every name a code object and the functions in it refer to (attribute names too: a superset)."""
    names = set(code.co_names)
    for const in code.co_consts:
        if type(const) is type(code):
            names |= names_used(const)
    return names


class ProgramGone(BaseException):
    """The program process ended or broke the protocol; the supervisor knows why."""


class ProgramExit(BaseException):
    """The program raised SystemExit (or another non-Exception) inside a call."""


def run_test_code(job, chan_in, chan_out, read, write):
    """Run the tests against stand-ins for the program's names; return (status, detail)."""
    import builtins

    sources = {"<tests>": job["tests"]}
    remotes = {}

    def call(request):
        try:
            send_frame(chan_out, request, write)
            reply = recv_frame(chan_in, read)
        except (OSError, ValueError, EOFError, TypeError) as exc:
            raise ProgramGone(f"broken pipe to the program: {exc}") from None
        if reply is None:
            raise ProgramGone("the program process ended")
        if type(reply) is not tuple or not reply or reply[0] not in ("ok", "raise"):
            raise ProgramGone("the program process sent something that is not a reply")
        if reply[0] == "raise":
            raise_from_program(reply)
        if len(reply) != 3 or type(reply[2]) is not tuple:
            raise ProgramGone("malformed reply")
        return decode(reply[1], remote), reply[2]

    def raise_from_program(reply):
        if len(reply) != 5 or not all(type(v) is str for v in reply[1:]):
            raise ProgramGone("malformed error reply")
        _, name, message, detail, status = reply
        cls = getattr(builtins, name, None)
        if status == "memory":
            raise MemoryError(message)
        if isinstance(cls, type) and issubclass(cls, Exception) and cls not in (StopIteration,):
            try:
                exc = cls(message)
            except BaseException:
                exc = Exception(message)
            raise exc
        raise ProgramExit(detail)

    class Remote:
        """A program function, class or object: calls and attribute reads go to the program."""
        __slots__ = ("_ref", "__weakref__")

        def __init__(self, ref):
            self._ref = ref

        def __call__(self, *args, **kwargs):
            try:
                wire_args, wire_kwargs = encode_arg(args), encode_arg(kwargs)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"sandbox: {exc}") from None
            result, changed = call(("call", self._ref, wire_args, wire_kwargs))
            for item in changed:  # mirror in-place changes of list/dict/set arguments
                if type(item) is tuple and len(item) == 2 and type(item[0]) is int and 0 <= item[0] < len(args):
                    mirror(args[item[0]], decode(item[1], remote))
            return result

        def __getattr__(self, attr):
            if attr.startswith("__"):
                raise AttributeError(attr)
            return call(("getattr", self._ref, attr))[0]

        def __repr__(self):
            return f"<{self._ref[2]} from the program>"

    def mirror(old, new):
        if type(old) is not type(new):
            return
        if type(old) in (list, bytearray):
            old[:] = new
        elif type(old) in (dict, set):
            old.clear()
            old.update(new)

    def remote(kind, key, name):
        ref = (kind, key, name)
        if ref not in remotes:
            remotes[ref] = Remote(ref)
        return remotes[ref]

    def encode_arg(x):
        return encode(x, reference)

    def reference(obj):  # a stand-in passed back: the program gets its own object again
        if type(obj) is Remote:
            return obj._ref
        raise TypeError(f"a {type(obj).__name__} cannot be passed to the program")

    globals_ = {"__name__": "__main__", "__builtins__": builtins}
    stage = "program"
    try:
        first = recv_frame(chan_in, read)
        if first is None:
            raise ProgramGone("the program process ended before it finished loading")
        if type(first) is tuple and len(first) == 5 and first[0] == "raise" and type(first[3]) is str:
            return ("memory" if first[4] == "memory" else "failed"), first[3]  # the program did not load
        if type(first) is not tuple or len(first) != 2 or first[0] != "defined" or type(first[1]) is not tuple:
            raise ProgramGone("the program process sent no list of names")
        entries = first[1]
        if not all(type(e) is tuple and len(e) == 3 and type(e[0]) is str and type(e[1]) is str for e in entries):
            raise ProgramGone("malformed list of names")
        stage = "tests"
        code = compile(job["tests"], "<tests>", "exec")
        # A program name that shadows a builtin (`set = lambda *a: frozenset()`) would reach into
        # the tests; it is given to them only when they use no other program name, i.e. when the
        # builtin-named function is the one under test (MBPP 126 defines `sum`).
        used = names_used(code)
        shadowing_ok = not any(e[0] in used and not hasattr(builtins, e[0]) for e in entries)
        for name, kind, what in entries:
            if hasattr(builtins, name) and not shadowing_ok:
                continue
            if kind == "module" and type(what) is str:
                try:  # the tests get their own copy of a stdlib module the program imported
                    globals_[name] = __import__(what, fromlist=["_"])
                except BaseException:
                    pass
            elif kind == "value":
                globals_[name] = decode(what, remote)
            elif type(what) is str:
                globals_[name] = remote("G", name, what)
        exec(code, globals_)
    except ProgramGone as exc:
        return "program_gone", str(exc)
    except ProgramExit as exc:
        return "failed", str(exc)
    except BaseException as exc:
        status = "memory" if isinstance(exc, MemoryError) else "failed"
        try:
            return status, describe(exc, stage, sources)
        except BaseException:
            return status, type(exc).__name__
    return "passed", "all tests passed"


# ------------------------------------------------------------------------------ isolation

MS_NOSUID, MS_NODEV, MS_BIND, MS_REC = 2, 4, 4096, 16384


def isolate(job, wd):  # pragma: no cover - runs in the sandbox process
    """Set up the layers described in pipeline/sandbox/__init__.py; return what is active."""
    import _signal
    import builtins
    import os
    import resource
    import sys

    limits = job["limits"]
    exit_, getpid = os._exit, os.getpid
    main_pid = getpid()

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
            # A new root on a tmpfs at the work folder: the system folders and the stdlib bound
            # in, nothing else (no project, no store, no data files, no host sockets), a few
            # device files, and the job's own size-capped tmpfs at the work folder's path.
            check(libc.mount(b"tmpfs", wdb, b"tmpfs", ctypes.c_ulong(MS_NOSUID | MS_NODEV), b"size=1m,mode=0755"),
                  "mount root tmpfs")
            kept = []
            for path in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/proc",
                         os.path.realpath(sys.base_prefix)):
                if not os.path.lexists(path) or any(path == k or path.startswith(k + "/") for k in kept):
                    continue
                kept.append(path)
                target = wd + path
                if os.path.islink(path):  # /bin -> usr/bin on merged-/usr systems
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    os.symlink(os.readlink(path), target)
                    continue
                os.makedirs(target, exist_ok=True)
                check(libc.mount(path.encode(), target.encode(), None, ctypes.c_ulong(MS_BIND | MS_REC), None),
                      "bind " + path)
            os.mkdir(wd + "/dev")
            for name in ("null", "zero", "full", "random", "urandom"):
                open(f"{wd}/dev/{name}", "w").close()
                check(libc.mount(f"/dev/{name}".encode(), f"{wd}/dev/{name}".encode(), None,
                                 ctypes.c_ulong(MS_BIND), None), "bind /dev/" + name)
            for i, name in enumerate(("stdin", "stdout", "stderr")):
                os.symlink(f"/proc/self/fd/{i}", f"{wd}/dev/{name}")
            os.symlink("/proc/self/fd", wd + "/dev/fd")
            os.makedirs(wd + wd)
            opts = f"size={limits['tmpfs_mb']}m,mode=0700".encode()
            check(libc.mount(b"tmpfs", (wd + wd).encode(), b"tmpfs", ctypes.c_ulong(MS_NOSUID | MS_NODEV), opts),
                  "mount work tmpfs")
            check(libc.chroot(wdb), "chroot")
            os.chdir(wd)
            setattr_(b"/", 0x8000, MountAttr(1, 0, 0, 0))   # AT_RECURSIVE, set MOUNT_ATTR_RDONLY
            setattr_(wdb, 0, MountAttr(0, 1, 0, 0))         # the work folder stays writable
            facts["hidden_host_files"] = True
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

        def on_xcpu(signum, frame):  # the supervisor reads the CPU time from the exit's rusage
            exit_(124)

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
    return facts



# ------------------------------------------------------------------------------ entry point

def main(job_bytes):  # pragma: no cover - runs in the sandbox process
    import marshal
    import os
    import sys

    job = marshal.loads(job_bytes)
    null = os.open("/dev/null", os.O_RDONLY)  # the program's input() gets end of file
    os.dup2(null, 0)
    os.close(null)
    fd, token = job["fd"], job["token"]
    write, read, exit_ = os.write, os.read, os._exit

    def send(*msg):
        write(fd, (repr(msg) + "\n").encode("utf-8", "backslashreplace"))

    facts = isolate(job, os.getcwd())
    send("ready", facts)
    if job["role"] == "program":
        try:
            serve_program(job, job["chan_in"], job["chan_out"], read, write)
        except BaseException:
            pass
        exit_(0)
    status, detail = run_test_code(job, job["chan_in"], job["chan_out"], read, write)
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass
    send(token, status, detail)
    exit_(0)


if __name__ == "__sandbox__":  # run by supervisor.LOADER with the job read from stdin
    main(JOB_BYTES)  # noqa: F821 - set by the loader
