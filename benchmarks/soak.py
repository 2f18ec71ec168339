"""Soak / leak check: ``python benchmarks/soak.py [--sessions 10000] [--wave 1000] ...``.

Runs the real proxy in its own process (uvloop, metrics on, the production code path) against the
mock upstream, and drives N sessions through it in waves: each session connects, gets
``Welcome``, sends ``Settings`` and gets ``SettingsApplied``, streams a little audio, asks one
question (``InjectUserMessage``) and receives the whole spoken reply (``AgentAudioDone``), then
closes. After each wave, once the proxy reports no live connection, the proxy process is asked
(over its stdin/stdout) for its resource figures, after a ``gc.collect()``:

- RSS (``VmRSS``), measured after ``malloc_trim(0)``: glibc keeps freed heap pages mapped, so
  the raw RSS plateaus at the high-water of the busiest wave whether or not anything leaks; after
  the trim it is the memory actually in use (the raw figure is reported too);
- open file descriptors (``/proc/<pid>/fd``);
- asyncio tasks (``asyncio.all_tasks()``), scheduled timers (live ``TimerHandle`` objects, which
  only the loop references once a connection has cancelled its own), transports (live picows
  ``WSTransport`` and loop TCP transports), and live ``Connection`` / ``Session`` / relay objects.

The first waves (``--warmup`` sessions, 3000 by default: the heap of the proxy process grows by
allocator steps over its first thousands of sessions, then stays flat) are the warm-up; the
figures right after them are the baseline. The run passes when, after the last wave, RSS is
within ``--rss-tolerance`` (10 %) of the baseline, tasks, timers and file descriptors equal
their baseline, and no transport,
``Connection``, ``Session`` or relay object is left at all (nothing per-session survives its
session). A leftover ``Connection`` is explained (what still references it).
The figures are measured *at once* when the last connection has finished: a timer or transport
that outlived its session (even by the 2 s of a close-handshake fallback) is counted.

``--impl py`` runs the pure-Python relay, ``--no-metrics`` a proxy without Prometheus metrics.
``run_soak(...)`` is the importable runner; tests/hardening/test_soak.py runs a short version
(500 sessions) in CI. Exit status 0 = pass, 1 = a leak, 2 = the run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script from a checkout: make `fastproxy` importable
    sys.path.insert(0, str(ROOT))

COUNTED = ("tasks", "timers", "fds")  # must equal the post-warm-up baseline
PER_SESSION = ("transports", "connections", "sessions", "relays")  # must be 0 once all ended

# --------------------------------------------------------------------------------------------
# the proxy process


def _resource_stats(server: Any) -> dict[str, Any]:
    """Figures of the proxy process (called inside it, after a full collection)."""
    gc.collect()
    kinds: dict[str, int] = {}
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in (
            "TimerHandle",
            "WSTransport",
            "TCPTransport",
            "_SelectorSocketTransport",
            "Connection",
            "Session",
            "Relay",
        ):
            kinds[name] = kinds.get(name, 0) + 1
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    return {
        "rss": rss,
        "fds": len(os.listdir("/proc/self/fd")),
        "tasks": len(asyncio.all_tasks()),
        "timers": kinds.get("TimerHandle", 0),
        "transports": kinds.get("WSTransport", 0)
        + kinds.get("TCPTransport", 0)
        + kinds.get("_SelectorSocketTransport", 0),
        "connections": kinds.get("Connection", 0),
        "sessions": kinds.get("Session", 0),
        "relays": kinds.get("Relay", 0),
        "live": len(server.connections),
        "accepted": server.accepted,
        "blocks": sys.getallocatedblocks(),  # Python objects and buffers allocated now
        "objects": len(gc.get_objects()),
    }


def _malloc_trim() -> None:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is not None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)


def _explain() -> list[str]:
    """What keeps leftover ``Connection`` objects alive (referrer types, three levels)."""
    gc.collect()
    out = []
    leftovers = [o for o in gc.get_objects() if type(o).__name__ == "Connection"]
    for conn in leftovers[:3]:
        state = {
            k: getattr(conn, k, None)
            for k in (
                "finished",
                "client_gone",
                "upstream_gone",
                "client_closing",
                "upstream_closing",
                "abandon_upstream",
                "outcome",
            )
        }
        out.append(f"Connection {getattr(conn, 'connection_id', '?')}: {state}")
        level = [conn]
        for depth in range(3):
            nxt = []
            for obj in level:
                for ref in gc.get_referrers(obj):
                    if ref is level or ref is leftovers or type(ref).__name__ == "frame":
                        continue
                    kind = f"{type(ref).__module__}.{type(ref).__qualname__}"
                    out.append("  " * (depth + 1) + f"<- {kind}")
                    nxt.append(ref)
            level = nxt[:6]
    return out


async def _child(upstream_url: str, metrics: bool) -> None:
    from fastproxy.config import load_config
    from fastproxy.metrics import Metrics
    from fastproxy.net.server import ProxyServer

    class CountingServer(ProxyServer):
        accepted = 0

        def accept(self, *args: Any, **kwargs: Any) -> Any:
            CountingServer.accepted += 1
            return super().accept(*args, **kwargs)

    env = {
        "FASTPROXY_OPENAI_API_KEY": "sk-soak",
        "FASTPROXY_UPSTREAM_URL": upstream_url,
        "FASTPROXY_MAX_SESSIONS": "20000",
        "FASTPROXY_LOG_LEVEL": "warning",
    }
    config = load_config([], env)
    server = CountingServer(config, Metrics() if metrics else None)
    await server.start(host="127.0.0.1", port=0)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"port": server.port, "pid": os.getpid()}), flush=True)
    while True:
        line = await reader.readline()
        command = line.decode().strip()
        if command in ("", "quit"):
            break
        if command == "stats":
            print(json.dumps(_resource_stats(server)), flush=True)
        elif command == "trim":  # return the heap's free pages to the OS, then measure
            _malloc_trim()
            print(json.dumps(_resource_stats(server)), flush=True)
        elif command == "explain":
            print(json.dumps(_explain()), flush=True)
    await server.close()


class ProxyProcess:
    """The proxy under test, in a child process that answers ``stats`` on stdin."""

    def __init__(self, upstream_url: str, impl: str = "c", metrics: bool = True) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        if impl == "py":
            env["FASTPROXY_NO_EXTENSIONS"] = "1"
        else:
            env.pop("FASTPROXY_NO_EXTENSIONS", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", upstream_url]
            + ([] if metrics else ["--no-metrics"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=str(ROOT),
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        hello = json.loads(self.proc.stdout.readline())
        self.port: int = hello["port"]
        self.pid: int = hello["pid"]

    def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the proxy process exited ({self.proc.poll()})")
        return json.loads(line)

    def stats(self) -> dict[str, Any]:
        return dict(self.ask("stats"))

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


# --------------------------------------------------------------------------------------------
# the load


class SoakClient:
    """A minimal picows client for one session (created by :func:`_session`)."""

    def __init__(self) -> None:
        from picows import WSListener

        outer = self

        class Listener(WSListener):  # type: ignore[misc]
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                outer.on_frame(transport, frame)

            def on_ws_disconnected(self, transport: Any) -> None:
                outer.closed.set()

        self.listener = Listener()
        self.types: list[str] = []
        self.audio_bytes = 0
        self.waiting: tuple[str, asyncio.Future[None]] | None = None
        self.closed = asyncio.Event()
        self.close_code: int | None = None

    def on_frame(self, transport: Any, frame: Any) -> None:
        from picows import WSMsgType

        if frame.msg_type == WSMsgType.BINARY:
            self.audio_bytes += frame.payload_size
        elif frame.msg_type == WSMsgType.TEXT:
            t = json.loads(frame.get_payload_as_bytes()).get("type", "?")
            self.types.append(t)
            if self.waiting is not None and self.waiting[0] == t and not self.waiting[1].done():
                self.waiting[1].set_result(None)
        elif frame.msg_type == WSMsgType.CLOSE:
            self.close_code = int(frame.get_close_code())
            transport.disconnect()

    async def wait_for(self, type_: str, timeout: float) -> None:
        if type_ in self.types:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting = (type_, fut)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            self.waiting = None


async def _session(port: int, frames: int, timeout: float) -> int:
    """One session; returns the agent audio bytes received."""
    from picows import WSCloseCode, WSMsgType, ws_connect

    client = SoakClient()
    transport, _ = await ws_connect(
        lambda: client.listener, f"ws://127.0.0.1:{port}/openai", websocket_handshake_timeout=10
    )
    try:
        await client.wait_for("Welcome", timeout)
        transport.send(WSMsgType.TEXT, b'{"type":"Settings","agent":{"think":{"prompt":"Hi"}}}')
        await client.wait_for("SettingsApplied", timeout)
        pcm = bytes(range(256)) * 4  # 1024 bytes: odd-sized frames exercise the carry
        for _ in range(frames):
            transport.send(WSMsgType.BINARY, pcm[:960])
        transport.send(WSMsgType.TEXT, b'{"type":"InjectUserMessage","content":"Hello?"}')
        await client.wait_for("AgentAudioDone", timeout)
        if client.audio_bytes == 0:
            raise RuntimeError(f"no agent audio: {client.types}")
        transport.send_close(WSCloseCode.OK)
        await asyncio.wait_for(client.closed.wait(), timeout)
    finally:
        if not client.closed.is_set():
            transport.disconnect(False)
    return client.audio_bytes


@dataclasses.dataclass
class SoakResult:
    sessions: int
    seconds: float
    baseline: dict[str, Any]
    final: dict[str, Any]
    waves: list[dict[str, Any]]
    failures: int
    rss_tolerance: float

    @property
    def rss_growth(self) -> float:
        return self.final["rss"] / self.baseline["rss"] - 1.0

    @property
    def leaks(self) -> list[str]:
        out = [
            f"{key}: {self.baseline[key]} -> {self.final[key]}"
            for key in COUNTED
            if self.final[key] != self.baseline[key]
        ]
        out += [
            f"{key}: {self.final[key]} still alive after every session ended"
            for key in PER_SESSION
            if self.final[key]
        ]
        if self.rss_growth > self.rss_tolerance:
            out.append(
                f"rss: {self.baseline['rss'] / 2**20:.1f} -> {self.final['rss'] / 2**20:.1f} MiB"
                f" (+{self.rss_growth:.1%} > {self.rss_tolerance:.0%})"
            )
        if self.final["live"]:
            out.append(f"live connections: {self.final['live']}")
        return out

    @property
    def ok(self) -> bool:
        return not self.leaks and not self.failures

    def summary(self) -> str:
        b, f = self.baseline, self.final
        return (
            f"{self.sessions} sessions in {self.seconds:.1f} s "
            f"({self.sessions / self.seconds:.0f}/s), {self.failures} failed; "
            f"RSS {b['rss'] / 2**20:.1f} -> {f['rss'] / 2**20:.1f} MiB ({self.rss_growth:+.1%}; "
            f"before malloc_trim {b['rss_raw'] / 2**20:.1f} -> {f['rss_raw'] / 2**20:.1f}); "
            f"fds {b['fds']} -> {f['fds']}; tasks {b['tasks']} -> {f['tasks']}; "
            f"timers {b['timers']} -> {f['timers']}; transports {b['transports']} -> "
            f"{f['transports']}; connections {b['connections']} -> {f['connections']}"
        )


async def _wait_idle(proxy: ProxyProcess, timeout: float) -> dict[str, Any]:
    """Stats as soon as the proxy has no live connection and no Connection object left; then
    ``rss`` after ``malloc_trim`` (memory in use) and ``rss_raw`` before it."""
    deadline = time.monotonic() + timeout
    while True:
        stats = await asyncio.to_thread(proxy.stats)
        if (stats["live"] == 0 and stats["connections"] == 0) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    trimmed = await asyncio.to_thread(proxy.ask, "trim")
    stats["rss_raw"], stats["rss"] = stats["rss"], trimmed["rss"]
    return dict(stats)


async def run_soak(
    sessions: int = 10_000,
    wave: int = 1000,
    concurrency: int = 100,
    warmup: int = 3000,
    frames: int = 10,
    rss_tolerance: float = 0.10,
    impl: str = "c",
    log: Callable[[str], None] = print,
    metrics: bool = True,
) -> SoakResult:
    """Run the soak (see the module docstring) and return its figures."""
    from fastproxy.testing import MockUpstream

    mock = await MockUpstream(max_recorded=16, reply_audio_ms=300, delta_ms=100).start()
    proxy = await asyncio.to_thread(ProxyProcess, mock.url, impl, metrics)
    failures = 0
    waves: list[dict[str, Any]] = []
    try:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            nonlocal failures
            async with gate:
                try:
                    await _session(proxy.port, frames, timeout=15)
                except Exception as exc:  # counted and reported, never hidden
                    failures += 1
                    if failures <= 5:
                        log(f"session failed: {exc!r}")

        async def run_wave(n: int) -> dict[str, Any]:
            t = time.monotonic()
            await asyncio.gather(*(one() for _ in range(n)))
            stats = await _wait_idle(proxy, 3)
            stats["wave_seconds"] = time.monotonic() - t
            return stats

        done = 0
        while done < warmup:
            n = min(wave, warmup - done)
            await run_wave(n)
            done += n
        baseline = await _wait_idle(proxy, 3)
        log(f"baseline after {done} warm-up sessions: {_fmt(baseline)}")
        started = time.monotonic()
        done = 0
        while done < sessions:
            n = min(wave, sessions - done)
            stats = await run_wave(n)
            done += n
            waves.append(stats)
            log(f"wave {len(waves)}: {done}/{sessions} sessions, {_fmt(stats)}")
            if stats["connections"]:
                for line in await asyncio.to_thread(proxy.ask, "explain"):
                    log("  " + line)
        seconds = time.monotonic() - started
        final = waves[-1] if waves else baseline
    finally:
        await asyncio.to_thread(proxy.stop)
        await mock.stop(raise_hook_errors=False)
    return SoakResult(sessions, seconds, baseline, final, waves, failures, rss_tolerance)


def _fmt(stats: dict[str, Any]) -> str:
    return (
        f"rss {stats['rss'] / 2**20:.1f} MiB (raw {stats['rss_raw'] / 2**20:.1f}), "
        f"fds {stats['fds']}, tasks {stats['tasks']}, "
        f"timers {stats['timers']}, transports {stats['transports']}, "
        f"connections {stats['connections']} (live {stats['live']}), "
        f"blocks {stats['blocks']}, gc objects {stats['objects']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/soak.py", description=__doc__)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--wave", type=int, default=1000, help="sessions between measurements")
    parser.add_argument("--concurrency", type=int, default=100, help="sessions open at once")
    parser.add_argument("--warmup", type=int, default=3000, help="sessions before the baseline")
    parser.add_argument("--frames", type=int, default=10, help="audio frames per session")
    parser.add_argument("--rss-tolerance", type=float, default=0.10)
    parser.add_argument("--impl", choices=("c", "py"), default="c")
    parser.add_argument("--no-metrics", action="store_true", help="run the proxy without metrics")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--child", metavar="UPSTREAM_URL", help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    import uvloop

    if ns.child:
        uvloop.run(_child(ns.child, not ns.no_metrics))
        return 0
    try:
        result = uvloop.run(
            run_soak(
                ns.sessions,
                ns.wave,
                ns.concurrency,
                ns.warmup,
                ns.frames,
                ns.rss_tolerance,
                ns.impl,
                metrics=not ns.no_metrics,
            )
        )
    except Exception as exc:
        print(f"soak run failed: {exc!r}", file=sys.stderr)
        return 2
    if ns.json:
        print(json.dumps(dataclasses.asdict(result)))
    print(("PASS: " if result.ok else "FAIL: ") + result.summary())
    for leak in result.leaks:
        print("  leak:", leak)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
