"""One end-to-end benchmark scenario: a real proxy process between real clients and a mock upstream.

For each :class:`Scenario` three processes run on loopback, and the proxy alone is measured:

- the mock upstream in echo mode (``fastproxy mock-upstream --mode echo``), which answers every
  ``input_audio_buffer.append`` with one ``response.output_audio.delta`` of the same audio;
- the proxy (``fastproxy serve --upstream-url ws://127.0.0.1:P/v1/realtime``, with a dummy API
  key so it does not start its in-process mock), ``FASTPROXY_NO_EXTENSIONS=1`` for ``impl=py``,
  ``--no-metrics`` when the scenario says so;
- the load generator (:mod:`fastproxy.tools.loadgen`): every session in one uvloop process.

When the machine allows it the proxy is pinned to one CPU and the mock and the generator to the
others, so the proxy's figures are not inflated by sharing a core with its load. The generator
reads the proxy's CPU time from ``/proc`` at both ends of its measurement window; this module
turns its raw JSON into one result dict (:func:`summarize`). Every wait is bounded, every
process is stopped in a ``finally``, and the generator's ``progress:`` lines are forwarded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fastproxy.tools.bench_procs import (
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    BenchError,
    Processes,
    child_env,
    compiled_relay_available,
    cpu_plan,
    free_port,
    pin,
    prepare_child,
    priority_of,
    wait_livez,
    wait_tcp,
)
from fastproxy.tools.loadgen import frame_bytes

__all__ = [
    "AUDIO_FORMATS",
    "BenchError",
    "Scenario",
    "compiled_relay_available",
    "run_scenario",
    "worst_case_seconds",
]


# name -> (encoding, sample rate) of the client's audio, both directions
AUDIO_FORMATS = {"24k": ("linear16", 24000), "16k": ("linear16", 16000), "mulaw": ("mulaw", 8000)}
AUDIO_LABELS = {"24k": "24 kHz passthrough", "16k": "16 kHz (resampled)", "mulaw": "μ-law 8 kHz"}


@dataclass(frozen=True)
class Scenario:
    """One load shape.

    ``kind``: ``stream`` (audio both ways for ``seconds``, of which the first ``warmup`` are not
    measured) or ``idle`` (set up ``sessions``, hold them ``hold`` seconds without audio, read the
    proxy's memory; ``warm`` of them are set up before the baseline reading). ``impl``: ``c``
    (compiled relay), ``py`` (pure-Python twin) or ``auto`` (``c`` when the compiled relay
    imports, otherwise ``py``, noted in the result). ``group`` names the suite part it belongs
    to (passthrough, resample, mulaw, metrics, ramp, idle, setup, custom)."""

    kind: str = "stream"
    sessions: int = 200
    seconds: float = 20.0
    rate: float = 50.0
    warmup: float = 2.0
    impl: str = "auto"
    audio: str = "24k"
    metrics: bool = True
    workers: int = 1
    connect_concurrency: int = 50
    warm: int = 0
    hold: float = 3.0
    group: str = "custom"
    name: str = ""

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.kind == "idle":
            return f"{self.group} {self.sessions}"
        extra = "" if self.metrics else " no-metrics"
        return f"{self.audio} {self.sessions}{extra}"

    @property
    def encoding(self) -> str:
        return AUDIO_FORMATS[self.audio][0]

    @property
    def sample_rate(self) -> int:
        return AUDIO_FORMATS[self.audio][1]

    def validate(self) -> None:
        if self.kind not in ("stream", "idle"):
            raise ValueError(f"kind must be stream or idle, not {self.kind!r}")
        if self.impl not in ("auto", "c", "py"):
            raise ValueError(f"impl must be auto, c or py, not {self.impl!r}")
        if self.audio not in AUDIO_FORMATS:
            raise ValueError(f"audio must be one of {', '.join(AUDIO_FORMATS)}, not {self.audio!r}")
        if self.sessions < 1 or self.rate <= 0 or self.workers < 1:
            raise ValueError("need sessions >= 1, rate > 0, workers >= 1")
        if not 0 <= self.warmup < self.seconds:
            raise ValueError("need 0 <= warmup < seconds")
        if not 0 <= self.warm < self.sessions:
            raise ValueError("need 0 <= warm < sessions")


# --------------------------------------------------------------------------- one scenario

_compiled: list[bool] = []  # cached answer of compiled_relay_available()


def resolve_impl(impl: str, notes: list[str]) -> str:
    if impl == "py":
        return "py"
    if not _compiled:
        _compiled.append(compiled_relay_available())
    if _compiled[0]:
        return "c"
    if impl == "c":
        raise BenchError("impl=c: the compiled relay (fastproxy.net.relay) does not import")
    notes.append(
        "compiled relay missing (fastproxy.net.relay does not import): "
        "ran the pure-Python twin with FASTPROXY_NO_EXTENSIONS=1"
    )
    return "py"


def _setup_timeout(s: Scenario) -> float:
    return 30.0 + s.sessions / 50.0


def _loadgen_command(s: Scenario, port: int, proxy_pid: int, mock_pid: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fastproxy.tools.loadgen",
        f"--url=ws://127.0.0.1:{port}/openai",
        f"--mode={s.kind}",
        f"--sessions={s.sessions}",
        f"--seconds={s.seconds}",
        f"--rate={s.rate}",
        f"--warmup={s.warmup}",
        f"--encoding={s.encoding}",
        f"--sample-rate={s.sample_rate}",
        f"--frame-bytes={frame_bytes(s.encoding, s.sample_rate)}",
        f"--warm={s.warm}",
        f"--hold={s.hold}",
        f"--connect-concurrency={s.connect_concurrency}",
        f"--setup-timeout={_setup_timeout(s)}",
        f"--proxy-pid={proxy_pid}",
        f"--mock-pid={mock_pid}",
    ]


def _loadgen_limit(s: Scenario) -> float:
    busy = s.seconds + 2.0 if s.kind == "stream" else s.hold + 1.0
    return _setup_timeout(s) + busy + 3.0 + 20.0


def worst_case_seconds(s: Scenario) -> float:
    """An upper bound of one scenario's wall time (start, setup, stream, drain, close, stop)."""
    return START_TIMEOUT_S + _loadgen_limit(s) + STOP_TIMEOUT_S


def _mock_command(port: int) -> list[str]:
    mock = [sys.executable, "-m", "fastproxy", "mock-upstream", "--mode", "echo"]
    return [*mock, "--log-level", "warning", "--port", str(port)]


def _serve_command(s: Scenario, proxy_port: int, mock_port: int) -> list[str]:
    serve = [sys.executable, "-m", "fastproxy", "serve", "--port", str(proxy_port)]
    serve += ["--upstream-url", f"ws://127.0.0.1:{mock_port}/v1/realtime"]
    serve += ["--log-level", "warning", "--max-sessions", str(max(10000, 2 * s.sessions))]
    if not s.metrics:
        serve.append("--no-metrics")
    if s.workers > 1:
        serve += ["--workers", str(s.workers)]
    return serve


@contextlib.contextmanager
def running_pair(s: Scenario, impl: str, report: Callable[[str], None]) -> Any:
    """Start the mock upstream and the proxy for ``s``; yield (procs, proxy port, pids, pinning)."""
    proxy_cpus, load_cpus, pinning = cpu_plan(s.workers)
    with tempfile.TemporaryDirectory(prefix="fastproxy-bench-") as tmp:
        procs = Processes(Path(tmp))
        try:
            mock_port, proxy_port = free_port(), free_port()
            mock_cmd = _mock_command(mock_port)
            report(f"{s.label} ({impl}): starting mock upstream and proxy; {pinning}")
            mock_pid = procs.start("mock", mock_cmd, child_env(), load_cpus)
            proxy_env = child_env(FASTPROXY_OPENAI_API_KEY="sk-bench")
            if impl == "py":
                proxy_env["FASTPROXY_NO_EXTENSIONS"] = "1"
            serve = _serve_command(s, proxy_port, mock_port)
            proxy_pid = procs.start("proxy", serve, proxy_env, proxy_cpus)
            deadline = time.monotonic() + START_TIMEOUT_S
            wait_tcp(procs, "mock", mock_port, deadline)
            wait_livez(procs, proxy_port, deadline)
            nice = priority_of(proxy_pid)
            pinning += f"; nice {nice}" if nice else "; normal priority (nice not allowed)"
            yield procs, proxy_port, proxy_pid, mock_pid, load_cpus, pinning, proxy_cpus
        finally:
            procs.stop_all()


def run_scenario(
    s: Scenario,
    *,
    progress: Callable[[str], None] | None = None,
    time_limit: float | None = None,
    during: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run one scenario with fresh processes; return its figures (see :func:`summarize`).

    ``during(proxy_pid)``, if given, runs in a thread while the load runs (the profiler)."""
    s.validate()
    report = progress or (lambda _message: None)
    notes: list[str] = []
    impl = resolve_impl(s.impl, notes)
    load_before = os.getloadavg()[0]
    with running_pair(s, impl, report) as pair:
        procs, port, proxy_pid, mock_pid, cpus, pinning, proxy_cpus = pair
        what = "idle" if s.kind == "idle" else f"{s.seconds:g} s at {s.rate:g} frames/s"
        report(f"{s.label} ({impl}): {s.sessions} sessions, {what}")
        cmd = _loadgen_command(s, port, proxy_pid, mock_pid)
        limit = _loadgen_limit(s) if time_limit is None else min(_loadgen_limit(s), time_limit)
        helper = None
        if during is not None:
            helper = threading.Thread(target=during, args=(proxy_pid,), daemon=True)
            helper.start()
        raw = _run_loadgen(procs, cmd, cpus, limit, lambda m: report(f"{s.label} ({impl}): {m}"))
        if helper is not None:
            helper.join(timeout=60.0)
        procs.check_alive("proxy")
        proxy_log = procs.log("proxy")
    if proxy_log.strip():
        notes.append(f"proxy log (tail): {proxy_log.strip().splitlines()[-1][:300]}")
    return summarize(s, impl, raw, notes, pinning, load_before, (proxy_cpus, cpus))


def _forward(stream: IO[bytes], keep: list[str], report: Callable[[str], None]) -> None:
    for raw_line in stream:
        line = raw_line.decode(errors="replace").rstrip()
        if line.startswith("progress: "):
            report(line[len("progress: ") :])
        elif len(keep) < 200:
            keep.append(line)


def _run_loadgen(
    procs: Processes,
    cmd: list[str],
    cpus: set[int] | None,
    limit: float,
    report: Callable[[str], None],
) -> dict[str, Any]:
    proc = subprocess.Popen(
        cmd,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=prepare_child,
    )
    procs.procs["loadgen"] = proc
    if cpus:
        pin(proc.pid, cpus)
    errors: list[str] = []
    chunks: list[bytes] = []
    assert proc.stderr is not None and proc.stdout is not None
    readers = [
        threading.Thread(target=_forward, args=(proc.stderr, errors, report), daemon=True),
        threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True),  # type: ignore[union-attr]
    ]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)
        raise BenchError(f"load generator did not finish within {limit:g} s") from None
    finally:
        for reader in readers:
            reader.join(timeout=STOP_TIMEOUT_S)
    out = b"".join(chunks)
    lines = out.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(errors[-20:])
        raise BenchError(f"load generator failed ({proc.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# --------------------------------------------------------------------------- figures


def summarize(
    s: Scenario,
    impl: str,
    raw: dict[str, Any],
    notes: list[str],
    pinning: str,
    load_before: float,
    cores: tuple[set[int] | None, set[int] | None] = (None, None),
) -> dict[str, Any]:
    """The published figures of one run, from the load generator's raw result."""
    window = raw.get("window", {})
    frames = raw.get("frames", {})
    memory = raw.get("memory_kib", {})
    rss_before = memory.get("proxy_before", {}).get("VmRSS")
    rss_end = memory.get("proxy_end", {}).get("VmRSS")
    rss_ready = memory.get("proxy_ready", {}).get("VmRSS")
    ready = raw.get("sessions_ready", 0)
    setup_cpu = raw.get("setup_cpu", {})
    added = setup_cpu.get("sessions") or 0
    result: dict[str, Any] = {
        "label": s.label,
        "scenario": dataclasses.asdict(s),
        "impl": impl,
        "sessions_ready": ready,
        "sessions_failed": raw.get("sessions_failed", 0),
        "setup_rate_per_s": raw.get("setup_rate_per_s"),
        "setup_ms": raw.get("setup_ms", {}),
        "setup_proxy_cpu_us_per_session": setup_cpu["proxy_cpu_seconds"] * 1e6 / added
        if added and setup_cpu.get("proxy_cpu_seconds") is not None
        else None,
        "setup_proxy_cpu_percent": setup_cpu.get("proxy_cpu_percent"),
        "setup_loadgen_cpu_percent": setup_cpu.get("loadgen_cpu_percent"),
        "setup_mock_cpu_percent": setup_cpu.get("mock_cpu_percent"),
        "window_seconds": window.get("seconds"),
        "frames_sent": frames.get("sent", 0),
        "frames_received": frames.get("matched", 0),
        "frames_lost": frames.get("lost", 0),
        "frames_relayed_in_window": window.get("relayed_frames", 0),
        "frames_misordered": frames.get("misordered", 0),
        "proxy_cpu_us_per_frame": window.get("proxy_cpu_us_per_frame"),
        "proxy_cpu_percent": window.get("proxy_cpu_percent"),
        "rtt_ms": raw.get("rtt_ms", {}),
        "proxy_rss_mib": (rss_end or rss_ready or 0) / 1024 or None,
        "proxy_rss_kib_per_session": (rss_end - rss_before) / ready
        if rss_end and rss_before and ready
        else None,
        "proxy_rss_kib_per_idle_session": (rss_ready - rss_before) / added
        if rss_ready and rss_before and added
        else None,
        "idle_proxy_cpu_percent": raw.get("idle", {}).get("proxy_cpu_percent"),
        "loadgen_cpu_percent": window.get("loadgen_cpu_percent"),
        "mock_cpu_percent": window.get("mock_cpu_percent"),
        "other_processes_cpu_percent": window.get("other_processes_cpu_percent"),
        "softirq_cpu_percent": window.get("softirq_cpu_percent"),
        "proxy_core_busy_percent": _core_busy(window, cores[0]),
        "load_core_busy_percent": _core_busy(window, cores[1]),
        "setup_proxy_core_busy_percent": _core_busy(setup_cpu, cores[0]),
        "setup_load_core_busy_percent": _core_busy(setup_cpu, cores[1]),
        "steal_cpu_percent": window.get("steal_cpu_percent"),
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


def _core_busy(cpu: dict[str, Any], cores: set[int] | None) -> float | None:
    """How busy the pinned CPUs were (mean, %, softirq included), from per-CPU figures."""
    busy = cpu.get("cpu_busy_percent")
    if not cores or not busy or max(cores) >= len(busy):
        return None
    return float(sum(busy[c] for c in cores)) / len(cores)


def holds_real_time(r: dict[str, Any], p99_ms: float = 50.0) -> bool:
    """The ramp's criterion: every session up, 0 frames lost, round-trip p99 < ``p99_ms``."""
    p99 = r.get("rtt_ms", {}).get("p99")
    return (
        r.get("sessions_ready") == r["scenario"]["sessions"]
        and r.get("frames_sent", 0) > 0
        and r.get("frames_lost", 1) == 0
        and not r.get("sessions_closed_while_streaming")
        and p99 is not None
        and p99 < p99_ms
    )


def _warnings(s: Scenario, raw: dict[str, Any]) -> list[str]:
    out: list[str] = []
    window = raw.get("window", {})
    if raw.get("sessions_failed"):
        out.append(f"{raw['sessions_failed']} of {s.sessions} sessions failed to set up")
    for name in ("loadgen", "mock"):
        busy = window.get(f"{name}_cpu_percent")
        if busy is not None and busy > 80.0:
            out.append(f"{name} at {busy:.0f}% CPU: the load side may be the bottleneck")
    steal = window.get("steal_cpu_percent")
    if steal is not None and steal > 5.0:
        out.append(f"the hypervisor took {steal:.0f}% of a core (steal): figures disturbed")
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
    busy = window.get("proxy_cpu_percent")
    lost = raw.get("frames", {}).get("lost")
    if (busy is not None and busy >= 90.0) or lost:
        out.append(
            "proxy saturated or behind (CPU "
            f"{0.0 if busy is None else busy:.0f}%, {lost or 0} frames lost): CPU per frame "
            "counts frames it had not relayed yet, read it as a lower bound"
        )
    unexpected = raw.get("frames", {}).get("unexpected")
    if unexpected:
        out.append(f"{unexpected} echoes arrived with no frame pending on their session")
    return out
