"""The end-to-end load benchmark: a real proxy process between real clients and a mock upstream.

For each :class:`Scenario` the benchmark starts three processes on loopback and measures the
proxy alone:

- the mock upstream in echo mode (``fastproxy mock-upstream --mode echo``), which answers every
  ``input_audio_buffer.append`` with one ``response.output_audio.delta`` of the same audio;
- the proxy (``fastproxy serve --upstream-url ws://127.0.0.1:P/v1/realtime``, with a dummy API
  key so it does not start its in-process mock), ``FASTPROXY_NO_EXTENSIONS=1`` for ``impl=py``;
- the load generator (:mod:`fastproxy.tools.loadgen`): every session in one uvloop process.

When the machine allows it the proxy is pinned to one CPU and the mock and the generator to the
others, so the proxy's figures are not inflated by sharing a core with its load. The generator
reads the proxy's CPU time from ``/proc`` at both ends of its measurement window; this module
turns its raw JSON into the figures of :data:`ROWS` and a table. Every wait is bounded and every
process is stopped in a ``finally``.

Library use: ``run_scenario(Scenario(sessions=100, seconds=10))`` returns a result dict;
``format_table(results)`` renders several side by side. The command lines are ``fastproxy bench``
(:func:`run`) and ``benchmarks/e2e_load.py`` (:func:`main`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = [
    "DEFAULT",
    "QUICK",
    "ROWS",
    "BenchError",
    "Scenario",
    "format_table",
    "main",
    "run",
    "run_scenario",
]

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
_REPO_ROOT = Path(__file__).resolve().parents[2]  # the directory holding the package


class BenchError(RuntimeError):
    """The benchmark could not run (a process failed to start, died, or timed out)."""


@dataclass(frozen=True)
class Scenario:
    """One load shape. ``seconds`` is the streaming time; its first ``warmup`` seconds are not
    measured. ``impl``: ``c`` (compiled relay), ``py`` (pure-Python twin) or ``auto`` (``c`` when
    the compiled relay imports, otherwise ``py``, noted in the result)."""

    sessions: int = 200
    seconds: float = 20.0
    rate: float = 50.0
    warmup: float = 2.0
    impl: str = "auto"
    frame_bytes: int = 960
    connect_concurrency: int = 50
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.sessions}x{self.seconds:g}s@{self.rate:g}"

    def validate(self) -> None:
        if self.impl not in ("auto", "c", "py"):
            raise ValueError(f"impl must be auto, c or py, not {self.impl!r}")
        if self.sessions < 1 or self.rate <= 0 or self.frame_bytes < 8:
            raise ValueError("need sessions >= 1, rate > 0, frame_bytes >= 8")
        if not 0 <= self.warmup < self.seconds:
            raise ValueError("need 0 <= warmup < seconds")


DEFAULT = Scenario()
QUICK = Scenario(sessions=50, seconds=5.0)


# --------------------------------------------------------------------------- processes


def _child_env(**overrides: str) -> dict[str, str]:
    """The caller's environment without any fastproxy/OpenAI setting, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTPROXY_", "OPENAI_"))}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(_REPO_ROOT) + (os.pathsep + path if path else "")
    env.update(overrides)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def compiled_relay_available() -> bool:
    """Whether ``fastproxy.net.relay`` imports with extensions on (in a fresh interpreter)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import fastproxy.net.relay"],
        env=_child_env(),
        capture_output=True,
        timeout=60,
    )
    return probe.returncode == 0


def _mock_command(port: int) -> list[str]:
    cmd = ["-m", "fastproxy", "mock-upstream", "--mode", "echo", "--log-level", "warning"]
    return [sys.executable, *cmd, "--port", str(port)]


class _Processes:
    """The processes of one scenario; :meth:`stop_all` ends them (SIGINT, then SIGKILL)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str], cpus: set[int] | None) -> int:
        with (self.log_dir / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
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


def _cpu_plan() -> tuple[set[int] | None, set[int] | None, str]:
    """(proxy CPUs, load-side CPUs, description): the proxy alone on the first CPU we may use."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None, None, "not pinned (no sched_setaffinity)"
    if len(cpus) < 2:
        return None, None, "not pinned (one CPU)"
    proxy, rest = {cpus[0]}, set(cpus[1:])
    return proxy, rest, f"proxy on CPU {cpus[0]}, mock + load generator on CPU {_cpu_list(rest)}"


def _cpu_list(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def _wait_tcp(procs: _Processes, name: str, port: int, deadline: float) -> None:
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


def _wait_livez(procs: _Processes, port: int, deadline: float) -> None:
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


# --------------------------------------------------------------------------- one scenario


def _resolve_impl(impl: str, notes: list[str]) -> str:
    if impl == "py":
        return "py"
    if compiled_relay_available():
        return "c"
    if impl == "c":
        raise BenchError("impl=c: the compiled relay (fastproxy.net.relay) does not import")
    notes.append(
        "compiled relay missing (fastproxy.net.relay does not import): "
        "ran the pure-Python twin with FASTPROXY_NO_EXTENSIONS=1"
    )
    return "py"


def _loadgen_command(s: Scenario, port: int, proxy_pid: int, mock_pid: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fastproxy.tools.loadgen",
        f"--url=ws://127.0.0.1:{port}/openai",
        f"--sessions={s.sessions}",
        f"--seconds={s.seconds}",
        f"--rate={s.rate}",
        f"--warmup={s.warmup}",
        f"--frame-bytes={s.frame_bytes}",
        f"--connect-concurrency={s.connect_concurrency}",
        f"--setup-timeout={_setup_timeout(s)}",
        f"--proxy-pid={proxy_pid}",
        f"--mock-pid={mock_pid}",
    ]


def _setup_timeout(s: Scenario) -> float:
    return 30.0 + s.sessions / 50.0


def worst_case_seconds(s: Scenario) -> float:
    """An upper bound of one scenario's wall time (start, setup, stream, drain, close, stop)."""
    return START_TIMEOUT_S + _setup_timeout(s) + s.seconds + 2.0 + 3.0 + 20.0 + STOP_TIMEOUT_S


def run_scenario(
    s: Scenario,
    *,
    progress: Callable[[str], None] | None = None,
    time_limit: float | None = None,
) -> dict[str, Any]:
    """Run one scenario with fresh processes; return its figures (see :func:`summarize`)."""
    s.validate()
    report = progress or (lambda _message: None)
    notes: list[str] = []
    impl = _resolve_impl(s.impl, notes)
    proxy_cpus, load_cpus, pinning = _cpu_plan()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fastproxy-bench-") as tmp:
        procs = _Processes(Path(tmp))
        try:
            mock_port, proxy_port = _free_port(), _free_port()
            mock_cmd = _mock_command(mock_port)
            report(f"{s.label} ({impl}): starting mock upstream and proxy; {pinning}")
            mock_pid = procs.start("mock", mock_cmd, _child_env(), load_cpus)
            proxy_env = _child_env(FASTPROXY_OPENAI_API_KEY="sk-bench")
            if impl == "py":
                proxy_env["FASTPROXY_NO_EXTENSIONS"] = "1"
            upstream = f"ws://127.0.0.1:{mock_port}/v1/realtime"
            serve = ["-m", "fastproxy", "serve", "--port", str(proxy_port)]
            serve += ["--upstream-url", upstream, "--log-level", "warning"]
            proxy_pid = procs.start("proxy", [sys.executable, *serve], proxy_env, proxy_cpus)
            deadline = time.monotonic() + START_TIMEOUT_S
            _wait_tcp(procs, "mock", mock_port, deadline)
            _wait_livez(procs, proxy_port, deadline)
            report(f"{s.label} ({impl}): {s.sessions} sessions, {s.seconds:g} s at {s.rate:g}/s")
            raw = _run_loadgen(procs, s, proxy_port, proxy_pid, mock_pid, load_cpus, time_limit)
            procs.check_alive("proxy")
            proxy_log = procs.log("proxy")
        finally:
            procs.stop_all()
    if proxy_log.strip():
        notes.append(f"proxy log (tail): {proxy_log.strip().splitlines()[-1][:300]}")
    return summarize(s, impl, raw, notes, pinning, load_before)


def _run_loadgen(
    procs: _Processes,
    s: Scenario,
    port: int,
    proxy_pid: int,
    mock_pid: int,
    cpus: set[int] | None,
    time_limit: float | None,
) -> dict[str, Any]:
    cmd = _loadgen_command(s, port, proxy_pid, mock_pid)
    limit = _setup_timeout(s) + s.seconds + 2.0 + 3.0 + 20.0
    if time_limit is not None:
        limit = min(limit, time_limit)
    err_path = procs.log_dir / "loadgen.log"
    with err_path.open("wb") as err:
        proc = subprocess.Popen(
            cmd, env=_child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
        )
    procs.procs["loadgen"] = proc
    if cpus:
        pin(proc.pid, cpus)
    try:
        out, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=STOP_TIMEOUT_S)
        raise BenchError(f"load generator did not finish within {limit:g} s") from None
    lines = out.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise BenchError(f"load generator failed ({proc.returncode}):\n{procs.log('loadgen')}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def summarize(
    s: Scenario,
    impl: str,
    raw: dict[str, Any],
    notes: list[str],
    pinning: str,
    load_before: float,
) -> dict[str, Any]:
    """The published figures of one run, from the load generator's raw result."""
    window = raw.get("window", {})
    frames = raw.get("frames", {})
    memory = raw.get("memory_kib", {})
    rss_end = memory.get("proxy_end", {}).get("VmRSS")
    rss_idle = memory.get("proxy_idle", {}).get("VmRSS")
    ready = raw.get("sessions_ready", 0)
    result: dict[str, Any] = {
        "label": s.label,
        "scenario": dataclasses.asdict(s),
        "impl": impl,
        "sessions_ready": ready,
        "sessions_failed": raw.get("sessions_failed", 0),
        "setup_rate_per_s": raw.get("setup_rate_per_s"),
        "setup_ms": raw.get("setup_ms", {}),
        "window_seconds": window.get("seconds"),
        "frames_sent": frames.get("sent", 0),
        "frames_received": frames.get("matched", 0),
        "frames_lost": frames.get("lost", 0),
        "frames_relayed_in_window": window.get("relayed_frames", 0),
        "frames_misordered": frames.get("misordered", 0),
        "proxy_cpu_us_per_frame": window.get("proxy_cpu_us_per_frame"),
        "proxy_cpu_percent": window.get("proxy_cpu_percent"),
        "rtt_ms": raw.get("rtt_ms", {}),
        "proxy_rss_mib": rss_end / 1024 if rss_end else None,
        "proxy_rss_kib_per_session": (rss_end - rss_idle) / ready
        if rss_end and rss_idle and ready
        else None,
        "loadgen_cpu_percent": window.get("loadgen_cpu_percent"),
        "mock_cpu_percent": window.get("mock_cpu_percent"),
        "other_processes_cpu_percent": window.get("other_processes_cpu_percent"),
        "proxy_preempted_per_s": window.get("proxy_preempted_per_s"),
        "max_send_lag_ms": raw.get("max_send_lag_ms"),
        "sessions_closed_while_streaming": raw.get("sessions_closed_while_streaming", 0),
        "pinning": pinning,
        "loadavg_before": load_before,
        "errors": raw.get("errors", []),
        "notes": notes + _warnings(s, raw),
        "raw": raw,
    }
    return result


def _warnings(s: Scenario, raw: dict[str, Any]) -> list[str]:
    out: list[str] = []
    window = raw.get("window", {})
    if raw.get("sessions_failed"):
        out.append(f"{raw['sessions_failed']} of {s.sessions} sessions failed to set up")
    for name in ("loadgen", "mock"):
        busy = window.get(f"{name}_cpu_percent")
        if busy is not None and busy > 80.0:
            out.append(f"{name} at {busy:.0f}% CPU: the load side may be the bottleneck")
    others = window.get("other_processes_cpu_percent")
    if others is not None and others > 20.0:
        out.append(
            f"other processes used {others:.0f}% of a core during the window: "
            "latency tails and CPU figures are disturbed (shared machine)"
        )
    lag = raw.get("max_send_lag_ms") or 0.0
    if lag > 20.0:
        out.append(f"send schedule fell up to {lag:.1f} ms behind (generator or machine busy)")
    if raw.get("sessions_closed_while_streaming"):
        out.append(f"{raw['sessions_closed_while_streaming']} sessions closed while streaming")
    return out


# --------------------------------------------------------------------------- report


def _num(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _ready(r: dict[str, Any]) -> str:
    return f"{r['sessions_ready']} / {r['scenario']['sessions']}"


def _rtt(r: dict[str, Any]) -> str:
    rtt = r["rtt_ms"]
    return " / ".join(_num(rtt.get(k), ".2f") for k in ("p50", "p99", "p99.9"))


ROWS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    (
        "sessions ready / requested",
        lambda r: f"{r['sessions_ready']} / {r['scenario']['sessions']}",
    ),
    ("session setup rate (/s)", lambda r: _num(r["setup_rate_per_s"], ".0f")),
    ("measured window (s)", lambda r: _num(r["window_seconds"], ".1f")),
    (
        "frames sent / received / lost",
        lambda r: f"{r['frames_sent']} / {r['frames_received']} / {r['frames_lost']}",
    ),
    ("proxy CPU µs per relayed frame", lambda r: _num(r["proxy_cpu_us_per_frame"], ".2f")),
    ("proxy CPU (% of one core)", lambda r: _num(r["proxy_cpu_percent"])),
    ("round trip p50 / p99 / p99.9 (ms)", _rtt),
    ("proxy RSS (MiB)", lambda r: _num(r["proxy_rss_mib"])),
    ("proxy RSS per session (KiB)", lambda r: _num(r["proxy_rss_kib_per_session"], ".0f")),
    ("load generator CPU (%)", lambda r: _num(r["loadgen_cpu_percent"])),
    ("mock upstream CPU (%)", lambda r: _num(r["mock_cpu_percent"])),
    ("max send lag (ms)", lambda r: _num(r["max_send_lag_ms"])),
    ("other processes' CPU (% of one core)", lambda r: _num(r["other_processes_cpu_percent"])),
    ("proxy preempted (/s)", lambda r: _num(r["proxy_preempted_per_s"], ".0f")),
]


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """The figures of several runs side by side, then their notes."""
    head = ["scenario", *[f"{r['label']} {r['impl']}" for r in results]]
    rows = [head, *[[label, *[fn(r) for r in results]] for label, fn in ROWS]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["fastproxy end-to-end load benchmark (loopback; mock upstream in echo mode)"]
    for index, row in enumerate(rows):
        values = zip(row[1:], widths[1:], strict=True)
        cells = [row[0].ljust(widths[0]), *[c.rjust(w) for c, w in values]]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    for r in results:
        lines.append(
            f"[{r['label']}, {r['impl']}] {r['pinning']}; load avg before {r['loadavg_before']:.2f}"
        )
        lines.extend(f"[{r['label']}, {r['impl']}] note: {n}" for n in r["notes"])
        lines.extend(f"[{r['label']}, {r['impl']}] error: {e}" for e in r["errors"][:5])
    return "\n".join(lines)


def _document(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "benchmark": "fastproxy-e2e-load",
        "version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "results": results,
    }


def run_all(
    scenarios: Sequence[Scenario],
    *,
    json_path: str | None = None,
    max_runtime: float = 900.0,
    out: IO[str] | None = None,
) -> int:
    """Run ``scenarios`` in turn, print the table, write JSON; 0 if every scenario ran."""
    out = sys.stdout if out is None else out
    start = time.monotonic()
    results: list[dict[str, Any]] = []
    failed = 0

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    for scenario in scenarios:
        remaining = max_runtime - (time.monotonic() - start)
        if remaining < worst_case_seconds(scenario) / 2:
            progress(f"{scenario.label}: skipped, {remaining:.0f} s left of --max-runtime")
            failed += 1
            continue
        try:
            results.append(run_scenario(scenario, progress=progress, time_limit=remaining))
        except (BenchError, OSError, ValueError, subprocess.SubprocessError) as exc:
            progress(f"{scenario.label}: failed: {exc}")
            failed += 1
    if results:
        print(format_table(results), file=out, flush=True)
    if json_path is not None:
        Path(json_path).write_text(json.dumps(_document(results), indent=2) + "\n")
        progress(f"wrote {json_path}")
    if any(r["sessions_ready"] == 0 for r in results):
        failed += 1
    return 1 if failed else 0


# --------------------------------------------------------------------------- entry points


def run(
    quick: bool = False,
    save: str | None = None,
    compare: str | None = None,
    threshold: float = 10.0,
    plot: str | None = None,
) -> int:
    """``fastproxy bench [--quick]``: the default scenario (or the quick one), as a table.

    ``save``, ``compare`` (with ``threshold``) and ``plot`` are accepted but not implemented yet
    (tracked by the benchmarks issue); each one given is reported and ignored.
    """
    for flag, value in (("--save", save), ("--compare", compare), ("--plot", plot)):
        if value is not None:
            print(
                f"fastproxy bench: {flag} is not implemented yet (benchmarks issue); ignored",
                file=sys.stderr,
            )
    return run_all([QUICK if quick else DEFAULT])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmarks/e2e_load.py",
        description="fastproxy end-to-end load benchmark: proxy + mock upstream (echo) + one "
        "load generator process, on loopback. Prints a table; --json writes the figures.",
    )
    p.add_argument("--sessions", type=int, default=None, help=f"default {DEFAULT.sessions}")
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help=f"streaming time incl. warm-up (default {DEFAULT.seconds:g})",
    )
    p.add_argument("--rate", type=float, default=DEFAULT.rate, help="frames/s per session")
    p.add_argument("--warmup", type=float, default=DEFAULT.warmup, help="unmeasured seconds")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK.sessions} sessions x {QUICK.seconds:g} s (explicit flags still win)",
    )
    p.add_argument(
        "--impl",
        default="auto",
        help="auto, c or py; a comma-separated list runs each (e.g. c,py) (default auto)",
    )
    p.add_argument("--frame-bytes", type=int, default=DEFAULT.frame_bytes)
    p.add_argument("--connect-concurrency", type=int, default=DEFAULT.connect_concurrency)
    p.add_argument("--json", metavar="PATH", default=None, help="write the figures as JSON")
    p.add_argument(
        "--max-runtime", type=float, default=900.0, help="total cap in seconds (default 900)"
    )
    return p


def scenarios_from_args(ns: argparse.Namespace) -> list[Scenario]:
    base = QUICK if ns.quick else DEFAULT
    impls = [i.strip() for i in ns.impl.split(",") if i.strip()]
    out = []
    for impl in impls or ["auto"]:
        scenario = dataclasses.replace(
            base,
            sessions=ns.sessions if ns.sessions is not None else base.sessions,
            seconds=ns.seconds if ns.seconds is not None else base.seconds,
            rate=ns.rate,
            warmup=ns.warmup,
            impl=impl,
            frame_bytes=ns.frame_bytes,
            connect_concurrency=ns.connect_concurrency,
        )
        scenario.validate()
        out.append(scenario)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """The ``benchmarks/e2e_load.py`` command line."""
    parser = _parser()
    ns = parser.parse_args(argv)
    try:
        scenarios = scenarios_from_args(ns)
    except ValueError as exc:
        parser.error(str(exc))
    return run_all(scenarios, json_path=ns.json, max_runtime=ns.max_runtime)


if __name__ == "__main__":
    sys.exit(main())
