"""Kill -9 a real `curate run` at chosen moments, resume it, and compare its database with an
uninterrupted run. Used by tests/flows/test_fault_tolerance.py, tests/engines/test_server_outage.py and
bench/kill_resume.py.

Which stage a run is in comes from its Prefect log: every task logs "Task run 'NAME' - Finished
in state Completed()", and tasks run one after another in a fixed order, so after k finished
tasks the run is in the (k+1)-th task of the uninterrupted reference run.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import yaml

from tests.tiny_model_config import lenient_filters, use_custom_formats, use_small_model

ROOT = Path(__file__).resolve().parent.parent
_FINISHED = re.compile(r"Task run '([^']+)' - Finished in state Completed")
_FLOW_BEGINS = re.compile(r"Beginning (?:sub)?flow run")
_SERVER_STARTS = re.compile(r"Starting temporary server")  # Prefect's, before the flow begins
# Task name (its start) -> the stage it belongs to, for the figures.
_STAGES = [("ingest", "ingest"), ("screen", "screen"), ("classify-domains", "domains"), ("synthesize", "synthesis"),
           ("rule-filters", "filters"), ("verify", "verify"), ("judge", "judging"), ("style-metrics", "scoring"),
           ("difficulty", "scoring"), ("rebalance-export", "export")]
STAGE_ORDER = ["startup", "ingest", "screen", "domains", "synthesis", "filters", "verify", "judging", "scoring",
               "export", "finishing"]

# Small shipped pools, one or two per domain: ingest and screening take seconds, not tens of them.
SMALL_POOLS = ["aime", "mbpp", "scibench-atkins", "scibench-chemmc", "bigbench-navigate"]


def stage_of(task: str) -> str:
    task = re.sub(r"-[0-9a-f]{3}$", "", task)  # older Prefect names: 'ingest-b6e'
    return next((stage for prefix, stage in _STAGES if task.startswith(prefix)), task)


def write_config(path: Path, base_url: str, model: str, *, limit: int, n: int = 2, pools: list[str] | None = None,
                 retry_wait_s: float = 120.0, max_retries: int = 4, max_concurrency: int = 8,
                 judge_batch: int = 4) -> Path:
    """The shipped default config on the OpenAI engine, small budgets, rules lenient enough for the
    135M model's text that samples reach the judge and the shards (as in tests/flows/test_e2e.py)."""
    config = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    for pool in config["pools"]:
        pool["path"] = str((ROOT / "configs" / pool["path"]).resolve())
    if pools is not None:
        config["pools"] = [p for p in config["pools"] if p["source"] in pools]
    for pool in config["pools"]:
        # Only math questions keep their reference answers: the 135M model rarely gets one right, and a
        # failed verification keeps a sample from the judge and the shards. The rest reach both.
        if pool.get("domain") != "math":
            pool["fields"] = {**pool.get("fields", {}), "answer": None, "tests": None}
    config["limit"] = limit
    use_small_model(config, {"kind": "openai", "base_url": base_url, "model": model, "timeout_s": 120,
                             "max_concurrency": max_concurrency, "max_retries": max_retries,
                             "retry_wait_s": retry_wait_s})
    # Two questions per engine pass and store transaction: a kill mid-synthesis keeps finished batches.
    config["synthesis"].update(n=n, reasoning_max_tokens=64, answer_max_tokens=48, batch_questions=2)
    use_custom_formats(config["synthesis"])
    config["judges"] = {"rules": ["lenient_rule"], "rules_dir": str(ROOT / "tests" / "fixtures"),
                        "batch_size": judge_batch}
    config["filters"] = {"disabled": ["truncation"], **lenient_filters()}  # 64-token budgets cut almost every sample
    config["rebalance"] = {"targets": {"math": 0.25, "code": 0.25, "science": 0.25, "logic": 0.25}}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class Kill:
    """SIGKILL `delay_s` after the run enters the task at position `task_index` of the reference
    run (0: the first task, counted from the flow's start; None: startup, counted from the start of
    Prefect's temporary server, else of the process). The
    delay is at the reference run's pace: a run whose flow started sooner or later (the machine's
    load changes) has it scaled by the same ratio, so the kill still lands inside the task."""

    task_index: int | None
    delay_s: float
    ref_flow_started: float = 0.0  # seconds the reference run took to start its flow
    target: str = ""  # the stage aimed at, for the figures
    after_server: bool = False  # startup: counted from the start of Prefect's temporary server
    # Stages that call the model: instead of a delay, kill while a request is in flight once the
    # server has completed this many since the task began (at once if the task ends first).
    # Load-proof, unlike time.
    after_requests: int | None = None

    def due(self, start: float, flow_started: float | None) -> float:
        pace = flow_started / self.ref_flow_started if flow_started and self.ref_flow_started else 1.0
        return start + self.delay_s * min(max(pace, 0.25), 4.0)


@dataclass
class Attempt:
    returncode: int
    seconds: float
    tasks: list[tuple[str, float]]  # finished tasks, seconds since the process started
    lines: list[str]
    flow_started: float | None = None  # seconds until the flow began (after imports, Prefect's server)
    server_started: float | None = None  # seconds until Prefect's temporary server was starting
    task_requests: list[int] = field(default_factory=list)  # server requests done when each task ended
    flow_requests: int = 0  # ... and when the flow began
    killed: bool = False
    killed_at: float | None = None
    stage: str | None = None  # stage running when killed
    target: str | None = None

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


class CurateProcess:
    """`curate run` in its own process group, its output read line by line as it comes."""

    def __init__(self, config: Path, db: Path, out: Path, requests: Callable[[], tuple[int, int]] | None = None):
        home = os.environ.get("CURATE_HOME", str(ROOT / ".curate"))
        env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="250", CURATE_HOME=home,
                   # Task and flow run logs on the console: they say which stage is running.
                   PREFECT_LOGGING_LEVEL="INFO", PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="INFO")
        cmd = [sys.executable, "-m", "curate.cli", "run", "--config", str(config), "--db", str(db), "--out", str(out)]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace", start_new_session=True)
        self.lines: list[str] = []
        self.tasks: list[tuple[str, float]] = []
        self.flow_started: float | None = None
        self.server_started: float | None = None
        # The model server's (completed, running) requests, if known.
        self.requests: Callable[[], tuple[int, int]] = requests or (lambda: (0, 0))
        self.task_requests: list[int] = []
        self.flow_requests = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            now = time.monotonic() - self.started
            line = line.rstrip("\n")
            self.lines.append(line)
            if self.server_started is None and _SERVER_STARTS.search(line):
                self.server_started = now
            if self.flow_started is None and _FLOW_BEGINS.search(line):
                self.flow_requests = self.requests()[0]
                self.flow_started = now
            match = _FINISHED.search(line)
            if match:
                self.task_requests.append(self.requests()[0])
                self.tasks.append((match.group(1), now))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def kill(self) -> None:
        """SIGKILL the whole group: the CLI and the temporary Prefect server it started."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self, timeout_s: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()
            raise RuntimeError(f"curate run still running after {timeout_s:.0f} s:\n" + "\n".join(self.lines[-40:]))
        self._reader.join(timeout=10)
        self.kill()  # anything it left behind in its group (e.g. a temporary server)
        return code

    def __enter__(self) -> "CurateProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()  # never leave a run behind, whatever stopped the caller (a failed assert, a timeout)

    def attempt(self, code: int) -> Attempt:
        return Attempt(code, self.elapsed(), list(self.tasks), list(self.lines), self.flow_started,
                       self.server_started, list(self.task_requests), self.flow_requests)


def wait_for(cond, what: str, p: CurateProcess, timeout_s: float = 600) -> None:
    """Poll `cond` while the run lives; fail with its last lines if it ends or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert p.proc.poll() is None, f"run ended before {what}:\n" + "\n".join(p.lines[-40:])
        assert time.monotonic() < deadline, f"no {what} after {timeout_s:.0f} s:\n" + "\n".join(p.lines[-40:])
        time.sleep(0.1)


def finished_stage(p: CurateProcess, stage: str) -> bool:
    """Has a task of this stage finished?"""
    return any(stage_of(name) == stage for name, _ in p.tasks)


def run_curate(config: Path, db: Path, out: Path, *, kill: Kill | None = None, sequence: list[str] | None = None,
               timeout_s: float = 1200, requests: Callable[[], tuple[int, int]] | None = None) -> Attempt:
    """Run to the end, or SIGKILL it as `kill` says (stage names from `sequence`, the reference
    run's finished tasks in order; `requests`: the model server's completed and running requests)."""
    with CurateProcess(config, db, out, requests) as p:
        if kill is None:
            return p.attempt(p.wait(timeout_s))
        while p.proc.poll() is None and p.elapsed() < timeout_s:
            if _kill_due(p, kill):
                stage = _running_stage(p, sequence or [])
                p.kill()
                at = p.elapsed()
                result = p.attempt(p.wait(60))
                result.killed, result.killed_at, result.stage, result.target = True, at, stage, kill.target
                return result
            time.sleep(0.02 if kill.after_requests is None else 0.1)
        result = p.attempt(p.wait(timeout_s))
        result.target = kill.target  # finished (or failed) before the kill came
        return result


def _kill_due(p: CurateProcess, kill: Kill) -> bool:
    if kill.task_index is None:
        start = p.server_started if kill.after_server else 0.0
        return start is not None and p.elapsed() >= kill.due(start, None)
    if len(p.tasks) < kill.task_index or (kill.task_index == 0 and p.flow_started is None):
        return False  # not there yet
    if kill.after_requests is None:
        start = p.flow_started if kill.task_index == 0 else p.tasks[kill.task_index - 1][1]
        return p.elapsed() >= kill.due(start, p.flow_started)
    if len(p.tasks) > kill.task_index:
        return True  # the task ended before that many requests: kill now, in whatever comes next
    begun = p.flow_requests if kill.task_index == 0 else p.task_requests[kill.task_index - 1]
    done, running = p.requests()
    return done - begun >= kill.after_requests and running > 0


def _running_stage(p: CurateProcess, sequence: list[str]) -> str:
    if p.flow_started is None:
        return "startup"
    done = len(p.tasks)
    return stage_of(sequence[done]) if done < len(sequence) else "finishing"


# --- what a database holds, and what must be equal -------------------------------------------------


@dataclass
class Snapshot:
    samples: int
    sample_ids: dict[str, str] = field(repr=False)  # sample_id -> sha256 of its raw text
    duplicate_ids: int = 0
    duplicate_keys: int = 0  # same (question, generation config, index) twice
    duplicate_contents: int = 0  # same (question, prompt, text) twice
    verdicts: dict[str, tuple[int, int]] = field(default_factory=dict)  # stage/rule -> (rows, passed)
    verdict_duplicates: int = 0
    question_verdicts: dict[str, tuple[int, int]] = field(default_factory=dict)
    judge_engine_errors: int = 0
    kept: int = 0
    selected: int = 0
    exported_rows: int = 0
    runs: dict[str, int] = field(default_factory=dict)  # status -> runs
    failed_errors: list[str] = field(default_factory=list)


_PER_RULE = "SELECT stage || '/' || rule, count(*), count(*) FILTER (WHERE passed) FROM {} GROUP BY ALL ORDER BY ALL"


def snapshot(db: Path) -> Snapshot:
    with duckdb.connect(str(db), read_only=True) as con:
        def q(sql: str, params=None) -> list[tuple]:
            return con.execute(sql, params).fetchall()

        rows = q("SELECT sample_id, question_id, gen_config_hash, sample_index, messages::VARCHAR, raw_text "
                 "FROM samples")
        ids = {r[0]: hashlib.sha256(r[5].encode()).hexdigest() for r in rows}
        contents = {hashlib.sha256("\x00".join(map(str, (r[1], r[4], r[5]))).encode()).hexdigest() for r in rows}
        keys = {(r[1], r[2], r[3]) for r in rows}
        snap = Snapshot(samples=len(rows), sample_ids=ids, duplicate_ids=len(rows) - len(ids),
                        duplicate_keys=len(rows) - len(keys), duplicate_contents=len(rows) - len(contents))
        snap.verdicts = {k: (n, p) for k, n, p in q(_PER_RULE.format("verdicts"))}
        snap.verdict_duplicates = q("SELECT count(*) - count(DISTINCT (sample_id, rule, rule_version)) "
                                    "FROM verdicts")[0][0]
        snap.question_verdicts = {k: (n, p) for k, n, p in q(_PER_RULE.format("question_verdicts"))}
        snap.judge_engine_errors = q("SELECT count(*) FROM verdicts WHERE stage = 'judge' "
                                     "AND reason LIKE '%engine error%'")[0][0]
        snap.kept = q("SELECT count(*) FROM sample_status WHERE kept")[0][0]
        latest = q("SELECT export_id FROM exports ORDER BY created_at DESC LIMIT 1")
        if latest:
            snap.selected = q("SELECT count(*) FROM selections WHERE export_id = ?", latest[0])[0][0]
            snap.exported_rows = q("SELECT coalesce(sum(rows), 0) FROM shards WHERE export_id = ?", latest[0])[0][0]
        snap.runs = dict(q("SELECT status, count(*) FROM runs GROUP BY ALL"))
        snap.failed_errors = [r[0] for r in q("SELECT error FROM runs WHERE status = 'failed' ORDER BY started_at")]
    return snap


def intact(snap: Snapshot) -> list[str]:
    """What must hold in any database, mid-run or not: no sample or verdict twice."""
    problems = []
    for name in ("duplicate_ids", "duplicate_keys", "duplicate_contents", "verdict_duplicates"):
        if getattr(snap, name):
            problems.append(f"{name}: {getattr(snap, name)}")
    return problems


def compare(ref: Snapshot, got: Snapshot) -> tuple[list[str], list[str]]:
    """(mismatches, notes). Mismatches: what must be equal whatever the model wrote (which samples
    exist, each once; how many verdicts each rule made; the screened questions) and, when every
    text is the same, every count. When texts differ (batched generation is not reproducible, see
    bench/kill_resume.py), differing counts that depend on the texts are notes."""
    mismatches = intact(got)
    missing = sorted(set(ref.sample_ids) - set(got.sample_ids))
    extra = sorted(set(got.sample_ids) - set(ref.sample_ids))
    if missing:
        mismatches.append(f"samples lost: {len(missing)} ({', '.join(missing[:3])} ...)")
    if extra:
        mismatches.append(f"samples not in the reference: {len(extra)}")
    differ = [s for s in ref.sample_ids if s in got.sample_ids and ref.sample_ids[s] != got.sample_ids[s]]
    notes = [f"{len(differ)} of {len(ref.sample_ids)} samples have other text than the reference"] if differ else []
    if got.judge_engine_errors:
        mismatches.append(f"judge verdicts stored from engine errors: {got.judge_engine_errors}")
    for key in sorted(set(ref.verdicts) | set(got.verdicts)):
        (rn, rp), (gn, gp) = ref.verdicts.get(key, (0, 0)), got.verdicts.get(key, (0, 0))
        if rn != gn:
            # Every sample gets every cheap rule and verification; a judge only what nothing rejected.
            (notes if differ and key.startswith("judge/") else mismatches).append(
                f"verdicts {key}: {gn} rows, reference {rn}")
        elif rp != gp:
            (notes if differ else mismatches).append(f"verdicts {key}: {gp} passed, reference {rp}")
    if ref.question_verdicts != got.question_verdicts:
        mismatches.append(f"question verdicts differ: {got.question_verdicts} vs {ref.question_verdicts}")
    for name in ("kept", "selected", "exported_rows"):
        r, g = getattr(ref, name), getattr(got, name)
        if r != g:
            (notes if differ else mismatches).append(f"{name}: {g}, reference {r}")
    return mismatches, notes


def text_differences(ref_db: Path, got_db: Path, limit: int = 3) -> list[str]:
    """The first samples whose text differs, with where the texts part."""
    with duckdb.connect(str(ref_db), read_only=True) as con:
        ref = dict(con.sql("SELECT sample_id, raw_text FROM samples").fetchall())
    with duckdb.connect(str(got_db), read_only=True) as con:
        got = dict(con.sql("SELECT sample_id, raw_text FROM samples").fetchall())
    out = []
    for sample_id in sorted(set(ref) & set(got)):
        a, b = ref[sample_id], got[sample_id]
        if a != b and len(out) < limit:
            at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            out.append(f"{sample_id[:12]}: same first {at} chars, then {a[at:at + 40]!r} vs {b[at:at + 40]!r}")
    return out


# --- the kill / resume loop ----------------------------------------------------------------------


def task_durations(ref: Attempt) -> list[float]:
    """Seconds each task of the reference run took (from the previous task's end)."""
    ends = [t for _, t in ref.tasks]
    return [end - start for start, end in zip([ref.flow_started, *ends], ends)]


_WORK_STAGES = {"synthesis": None, "filters": "filter", "verify": "verify", "judging": "judge"}


def remaining_share(stage: str, snap: Snapshot | None, ref: Snapshot) -> float:
    """How much of a stage's work a resumed run still has to do (stages that redo everything: 1)."""
    if snap is None or stage not in _WORK_STAGES:
        return 1.0
    if stage == "synthesis":
        return 1 - snap.samples / max(ref.samples, 1)
    prefix = _WORK_STAGES[stage] + "/"
    rows = lambda s: sum(n for k, (n, _) in s.verdicts.items() if k.startswith(prefix))  # noqa: E731
    return 1 - rows(snap) / max(rows(ref), 1)


@dataclass
class Trial:
    number: int
    attempt: Attempt
    samples: int  # stored after the kill
    verdicts: int
    problems: list[str]  # duplicates found right after the kill


def kill_resume(config: Path, db: Path, out: Path, plan: list[str], ref: Attempt, ref_snap: Snapshot, rng, *,
                requests: Callable[[], tuple[int, int]] | None = None,
                log=print) -> tuple[list[Trial], Attempt]:
    """SIGKILL a run once per entry of `plan` (stage names), at a random moment inside that stage
    (scaled to the work a resumed run has left: in stages that call the model, while one of the
    requests still due is in flight, when `requests` reads the server's counts), checking the
    database after each kill; then resume until a run finishes. Returns the trials and the
    finishing run. `ref` must have been run with the same `requests`."""
    sequence = [name for name, _ in ref.tasks]
    durations = task_durations(ref)
    ref_requests = [b - a for a, b in zip([ref.flow_requests, *ref.task_requests], ref.task_requests)]
    trials: list[Trial] = []
    snap: Snapshot | None = None
    for number, stage in enumerate(plan, 1):
        if stage == "startup":  # between the start of Prefect's temporary server and the flow's
            server = ref.server_started
            span = ref.flow_started - (server or 0.0)
            kill = Kill(None, rng.uniform(0.05, 0.8) * span, target=stage, after_server=server is not None)
        else:
            index = rng.choice([i for i, name in enumerate(sequence) if stage_of(name) == stage])
            share = remaining_share(stage, snap, ref_snap)
            # Early rather than late in the task: a late kill overshoots into the next one when this run is faster.
            delay = rng.uniform(0.05, 0.6) * durations[index] * max(share, 0.05)
            kill = Kill(index, delay, ref.flow_started, stage)
            due = round(ref_requests[index] * share) if requests else 0
            if due > 0:  # a stage that calls the model: during one of the requests it has left
                kill.after_requests = rng.randint(0, due - 1)
        attempt = run_curate(config, db, out, kill=kill, sequence=sequence, requests=requests)
        snap = snapshot(db) if db.exists() else None
        trial = Trial(number, attempt, snap.samples if snap else 0,
                      sum(n for n, _ in snap.verdicts.values()) if snap else 0, intact(snap) if snap else [])
        trials.append(trial)
        hit = attempt.stage if attempt.killed else f"none (exit {attempt.returncode})"
        log(f"kill {number:>2}: aimed at {stage:<9} hit {hit:<9} at {attempt.killed_at or attempt.seconds:6.1f} s; "
            f"stored {trial.samples} samples, {trial.verdicts} verdicts" + (f"; PROBLEMS {trial.problems}"
                                                                            if trial.problems else ""))
        if not attempt.killed and attempt.returncode != 0:
            raise RuntimeError(f"curate run failed (exit {attempt.returncode}):\n" + "\n".join(attempt.lines[-40:]))
    for _ in range(3):  # resume until a run finishes (one is enough unless something fails)
        final = run_curate(config, db, out, requests=requests)
        if final.returncode == 0:
            return trials, final
        log(f"resume exited with {final.returncode}:\n" + "\n".join(final.lines[-20:]))
    raise RuntimeError("no resumed run finished")
