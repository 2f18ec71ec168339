"""The processes of a benchmark scenario: environment, CPU pinning, start, readiness, stop.

Children get the caller's environment without any ``FASTPROXY_*``/``OPENAI_*`` setting (so a
developer's shell cannot change what is measured), the checkout on ``PYTHONPATH``, and the hard
limit of open files (1,000 idle sessions are 2,000+ sockets in the proxy) and, when allowed, a
nice value of -10 (a benchmark on a shared machine should not queue behind the other jobs; the
result says whether it applied). The proxy is pinned
alone to the first CPU this process may use, everything else to the others. Every wait is bounded
and :meth:`Processes.stop_all` ends every child (SIGINT, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = [
    "START_TIMEOUT_S",
    "STOP_TIMEOUT_S",
    "BenchError",
    "Processes",
    "child_env",
    "compiled_relay_available",
    "cpu_plan",
    "free_port",
    "pin",
    "prepare_child",
    "priority_of",
    "wait_livez",
    "wait_tcp",
]

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
_REPO_ROOT = Path(__file__).resolve().parents[2]  # the directory holding the package


class BenchError(RuntimeError):
    """The benchmark could not run (a process failed to start, died, or timed out)."""


def child_env(**overrides: str) -> dict[str, str]:
    """The caller's environment without any fastproxy/OpenAI setting, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTPROXY_", "OPENAI_"))}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(_REPO_ROOT) + (os.pathsep + path if path else "")
    env.update(overrides)
    return env


PRIORITY = -10  # nice value asked for every child: other jobs on the machine yield to the run


def prepare_child() -> None:
    """In a child before exec: the hard limit of open files (1,000 idle sessions need 2,000+
    sockets in the proxy), and a higher scheduling priority when allowed (root or
    CAP_SYS_NICE), so that other jobs on a shared machine disturb the figures less."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, PRIORITY)


def priority_of(pid: int) -> int | None:
    """The nice value of ``pid`` (None when it cannot be read)."""
    try:
        return os.getpriority(os.PRIO_PROCESS, pid)
    except OSError:
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def compiled_relay_available() -> bool:
    """Whether ``fastproxy.net.relay`` imports with extensions on (in a fresh interpreter)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import fastproxy.net.relay"],
        env=child_env(),
        capture_output=True,
        timeout=60,
    )
    return probe.returncode == 0


class Processes:
    """The processes of one scenario; :meth:`stop_all` ends them (SIGINT, then SIGKILL)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str], cpus: set[int] | None) -> int:
        with (self.log_dir / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=prepare_child,
            )
        self.procs[name] = proc
        if cpus:
            pin(proc.pid, cpus)
        return proc.pid

    def log(self, name: str, tail: int = 2000) -> str:
        try:
            return (self.log_dir / f"{name}.log").read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # the proxy drains on SIGTERM; SIGINT is at once
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)


def pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of ``pid`` (the ones started later inherit it from the main thread)."""
    tids = [pid]
    with contextlib.suppress(OSError):
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    for tid in tids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, cpus)


def cpu_plan(workers: int = 1) -> tuple[set[int] | None, set[int] | None, str]:
    """(proxy CPUs, load-side CPUs, description): the proxy alone on the first CPU we may use."""
    if workers > 1:
        return None, None, f"not pinned ({workers} proxy workers)"
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None, None, "not pinned (no sched_setaffinity)"
    if len(cpus) < 2:
        return None, None, "not pinned (one CPU)"
    proxy, rest = {cpus[0]}, set(cpus[1:])
    rest_list = ",".join(str(c) for c in sorted(rest))
    return proxy, rest, f"proxy on CPU {cpus[0]}, mock + load generator on CPU {rest_list}"


def wait_tcp(procs: Processes, name: str, port: int, deadline: float) -> None:
    while True:
        procs.check_alive(name)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{name} did not listen on {port} in time:\n{procs.log(name)}")
        time.sleep(0.05)


def wait_livez(procs: Processes, port: int, deadline: float) -> None:
    while True:
        procs.check_alive("proxy")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1) as reply:
                if reply.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"proxy /livez did not answer in time:\n{procs.log('proxy')}")
        time.sleep(0.05)
