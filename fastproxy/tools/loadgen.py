"""The load generator of the end-to-end benchmark: N client sessions in one uvloop process.

``python -m fastproxy.tools.loadgen --url ws://127.0.0.1:PORT/openai --sessions N ...`` connects
N Deepgram-style sessions (``Welcome`` → ``Settings`` → ``SettingsApplied``, bounded concurrency
and timeouts). In ``stream`` mode it then sends a 20 ms frame in the client's format
(``--encoding``/``--sample-rate``) on every session at ``--rate`` frames/s and matches the
echoes the proxy relays back from the mock upstream (echo mode). In ``idle`` mode it only holds
the sessions open and reads the proxy's memory. It prints one JSON object with the raw figures
on stdout and ``progress: ...`` lines on stderr; :mod:`fastproxy.tools.bench` starts it.

Why it is shaped this way, so the generator is never the bottleneck and the figures are honest:

- One timer drives every send. Session ``i`` of ``N`` is due at ``t0 + i·T/N + k·T``
  (``T`` = 1/rate), so sends are spread evenly; each wake-up sends every frame already due and
  sleeps until the next one, at least 1 ms (uvloop timers have 1 ms resolution). The schedule is
  open-loop: a late wake-up sends late, it never skips or re-bases.
- Echoes are matched in order per session (a FIFO of send times): the mock answers every append
  with one delta and the proxy turns every delta into one binary frame, also when it resamples
  (16 kHz) and the bytes change. Each frame's first 8 bytes are ``<uint32 sequence, uint32 send
  time in µs>``; on a passthrough format (linear16 24 kHz, μ-law) the echo carries them back
  unchanged and the sequence is checked too (``misordered``).
- The measurement window starts ``--warmup`` seconds after streaming starts and ends when the
  last frame is sent. Proxy and mock CPU (``/proc/PID/stat`` utime+stime, all threads), the
  generator's own CPU (``getrusage``) and the frame counters are snapshotted at both ends in the
  same thread, so they cover the same interval. ``sent`` counts frames sent in the window,
  ``received_in_window`` echoes that arrived in it (together: the frames the proxy relayed in
  that interval); ``matched`` counts echoes of frames sent in the window, waited for up to
  ``--drain`` seconds after it (``lost = sent − matched``); round trips are those of matched frames.
- Idle memory: ``--warm`` sessions are set up first and kept, then the proxy's RSS is read, then
  the others are set up; after ``--hold`` seconds it is read again. The difference over the
  sessions added is the marginal RSS of an idle session (one-time costs excluded).
- The garbage collector is off while streaming: the hot path allocates no cycles, and a
  collection pause in the generator would show up as proxy latency.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import struct
import sys
import time
from array import array
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from fastproxy.tools.procstat import (
    CLOCK_RESOLUTION_S,
    Snapshot,
    cpu_between,
    cpu_busy_seconds,
    machine_busy_seconds,
    own_cpu_seconds,
    proc_cpu_seconds,
    proc_memory_kib,
    proc_preempted,
    tree_cpu_seconds,
    tree_memory_kib,
    try_pid,
)

__all__ = [
    "LoadConfig",
    "frame_bytes",
    "main",
    "proc_cpu_seconds",
    "proc_memory_kib",
    "run_load",
    "settings_message",
]  # proc_* re-exported from fastproxy.tools.procstat for existing callers

HEADER = struct.Struct("<II")  # sequence number, send time (µs since the generator's base)
_SEQ = struct.Struct("<I")
_MAX_ERRORS_KEPT = 20
_BINARY = WSMsgType.BINARY
_TEXT = WSMsgType.TEXT
_CLOSE = WSMsgType.CLOSE
_US32 = 0xFFFFFFFF
_NOT_YET = 1 << 62
_MIN_SLEEP_NS = 1_000_000
MAX_RUN_S = 3600.0  # send times are 32-bit µs: must stay well under 71 minutes
ENCODINGS = {"linear16": 2, "mulaw": 1, "alaw": 1}  # bytes per sample
PROGRESS_EVERY_S = 5.0


def frame_bytes(encoding: str, sample_rate: int, frame_ms: float = 20.0) -> int:
    """Size of one ``frame_ms`` frame of client audio in ``encoding`` at ``sample_rate``."""
    return round(sample_rate * frame_ms / 1000.0) * ENCODINGS[encoding]


def settings_message(encoding: str, sample_rate: int) -> bytes:
    """The client's ``Settings``: the same format both ways."""
    fmt = {"encoding": encoding, "sample_rate": sample_rate}
    return json.dumps(
        {"type": "Settings", "audio": {"input": fmt, "output": {**fmt, "container": "none"}}}
    ).encode()


@dataclass
class LoadConfig:
    url: str
    sessions: int = 200
    seconds: float = 20.0
    rate: float = 50.0
    warmup: float = 2.0
    frame_bytes: int = 960
    encoding: str = "linear16"
    sample_rate: int = 24000
    mode: str = "stream"  # stream | idle
    warm: int = 0  # idle mode: sessions set up before the "before" memory reading
    hold: float = 2.0  # idle mode: seconds between the last setup and the "after" reading
    connect_concurrency: int = 50
    connect_timeout: float = 10.0
    setup_timeout: float = 60.0
    drain: float = 2.0
    proxy_pid: int | None = None
    mock_pid: int | None = None
    progress: bool = True

    @property
    def passthrough(self) -> bool:
        """Whether the echo comes back byte for byte (no resampling on either leg)."""
        return self.encoding != "linear16" or self.sample_rate == 24000

    def validate(self) -> None:
        if self.mode not in ("stream", "idle"):
            raise ValueError("mode must be stream or idle")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}")
        if self.sessions < 1 or self.rate <= 0 or self.frame_bytes < HEADER.size:
            raise ValueError("need sessions >= 1, rate > 0 and frame_bytes >= 8")
        if not 0 <= self.warmup < self.seconds <= MAX_RUN_S:
            raise ValueError(f"need 0 <= warmup < seconds <= {MAX_RUN_S:g}")
        if not 0 <= self.warm < self.sessions or not 0 <= self.hold <= MAX_RUN_S:
            raise ValueError("need 0 <= warm < sessions and 0 <= hold")


@dataclass
class _Stats:
    sent: int = 0  # in the window
    sent_total: int = 0
    received_in_window: int = 0
    matched: int = 0
    received_total: int = 0
    unexpected: int = 0  # binary frames with no frame pending on that session
    misordered: int = 0
    short_frames: int = 0
    sessions_closed_while_streaming: int = 0
    send_skipped_closed: int = 0
    max_send_lag_us: int = 0
    text_types: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    rtts_us: array[int] = field(default_factory=lambda: array("I"))

    def error(self, message: str) -> None:
        if len(self.errors) < _MAX_ERRORS_KEPT:
            self.errors.append(message)


class _Session(WSListener):
    """One client session: setup futures, then the per-frame receive path."""

    def __init__(self, gen: _Generator, index: int) -> None:
        super().__init__()
        self.gen = gen
        self.index = index
        self.transport: WSTransport | None = None
        loop = asyncio.get_running_loop()
        self.welcome: asyncio.Future[None] = loop.create_future()
        self.applied: asyncio.Future[None] = loop.create_future()
        self.open = False
        self.tx_seq = 0
        self.rx_next = 0
        self.pending: deque[int] = deque()  # send times (µs) of frames not echoed yet
        gen.created.append(self)

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.open = True

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == _BINARY:  # the hot path: one echoed frame
            gen = self.gen
            now_us = (time.perf_counter_ns() - gen.base_ns) // 1000
            stats = gen.stats
            stats.received_total += 1
            if not self.pending:
                stats.unexpected += 1
                return
            sent_us = self.pending.popleft()
            if gen.check_header:
                if frame.payload_size < HEADER.size:
                    stats.short_frames += 1
                else:
                    seq = _SEQ.unpack_from(frame.get_payload_as_memoryview())[0]
                    if seq != self.rx_next:
                        stats.misordered += 1
                    self.rx_next = seq + 1
            rtt = now_us - sent_us
            second = (now_us - gen.t0_us) // 1_000_000
            if 0 <= second < len(gen.tl_count):  # per-second timeline, warm-up included
                gen.tl_count[second] += 1
                gen.tl_sum[second] += rtt
                if rtt > gen.tl_max[second]:
                    gen.tl_max[second] = rtt
            if gen.measuring:
                stats.received_in_window += 1
            if gen.window_start_us <= sent_us < gen.window_end_us:
                stats.matched += 1
                stats.rtts_us.append(min(rtt, _US32))
        elif frame.msg_type == _TEXT:
            self._on_text(frame.get_payload_as_bytes())
        elif frame.msg_type == _CLOSE:
            code = frame.get_close_code()
            if not transport.is_close_frame_sent:  # the proxy started it: worth reporting
                self.gen.stats.error(f"session {self.index}: proxy closed with {int(code.value)}")
                transport.send_close(code)
            transport.disconnect()

    def _on_text(self, payload: bytes) -> None:
        try:
            event = json.loads(payload)
            kind = str(event.get("type"))
        except (ValueError, AttributeError):
            kind = "(not a JSON object)"
            event = {}
        self.gen.stats.text_types[kind] += 1
        if kind == "Welcome" and not self.welcome.done():
            self.welcome.set_result(None)
        elif kind == "SettingsApplied" and not self.applied.done():
            self.applied.set_result(None)
        elif kind in ("Error", "Warning"):
            self.gen.stats.error(f"session {self.index}: {kind} {event.get('code')}")

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.open and self.gen.streaming:
            self.gen.stats.sessions_closed_while_streaming += 1
        self.open = False
        for fut in (self.welcome, self.applied):
            if not fut.done():
                fut.set_exception(ConnectionError("disconnected during setup"))

    def send_frame(self, frame: bytearray, now_ns: int) -> None:
        sent_us = (now_ns - self.gen.base_ns) // 1000
        HEADER.pack_into(frame, 0, self.tx_seq & _US32, sent_us & _US32)
        self.tx_seq += 1
        self.pending.append(sent_us)
        assert self.transport is not None
        self.transport.send(_BINARY, frame)  # copies: the template can be reused at once


class _Generator:
    """All sessions, the send schedule, the measurement window and the result."""

    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self.check_header = config.passthrough
        self.settings = settings_message(config.encoding, config.sample_rate)
        self.stats = _Stats()
        self.base_ns = time.perf_counter_ns()
        self.sessions: list[_Session] = []  # set up and streaming
        self.created: list[_Session] = []  # every listener, for the final close
        self.streaming = False
        self.measuring = False
        self.window_start_us = _NOT_YET
        self.window_end_us = _NOT_YET
        self.setup_ms: list[float] = []
        self.setup_seconds = 0.0
        self.setup_failed = 0
        self.setup_cpu: dict[str, float] = {}
        self.snapshots: list[Snapshot] = []
        self.memory: dict[str, dict[str, int]] = {}
        self.idle: dict[str, Any] = {}
        self.frame = bytearray(config.frame_bytes)
        self.t0_us = _NOT_YET
        seconds = int(config.seconds + config.drain) + 2
        self.tl_count = array("Q", bytes(8 * seconds))
        self.tl_sum = array("Q", bytes(8 * seconds))
        self.tl_max = array("Q", bytes(8 * seconds))

    def now_us(self) -> int:
        return (time.perf_counter_ns() - self.base_ns) // 1000

    def progress(self, message: str) -> None:
        if self.config.progress:
            print(f"progress: {message}", file=sys.stderr, flush=True)

    # -- setup ------------------------------------------------------------------------------

    async def setup(self, first: int, count: int, timeout: float) -> list[_Session]:
        """Set up sessions ``first .. first+count-1``; return the ones that are ready."""
        cfg = self.config
        gate = asyncio.Semaphore(cfg.connect_concurrency)
        done_count = 0

        async def one(index: int) -> _Session | None:
            nonlocal done_count
            async with gate:
                began = time.perf_counter()
                session: _Session | None = None
                try:
                    async with asyncio.timeout(cfg.connect_timeout):
                        _, listener = await ws_connect(
                            lambda: _Session(self, index),
                            cfg.url,
                            websocket_handshake_timeout=cfg.connect_timeout,
                            enable_auto_ping=False,
                            read_buffer_init_size=4096,
                        )
                        assert isinstance(listener, _Session)
                        session = listener
                        await session.welcome
                        assert session.transport is not None
                        session.transport.send(_TEXT, self.settings)
                        await session.applied
                except Exception as exc:
                    self.setup_failed += 1
                    self.stats.error(f"session {index} setup: {type(exc).__name__}: {exc}")
                    if session is not None and session.transport is not None:
                        session.transport.disconnect(False)
                    return None
                finally:
                    done_count += 1
                self.setup_ms.append((time.perf_counter() - began) * 1000.0)
                return session

        async def report() -> None:
            while True:
                await asyncio.sleep(PROGRESS_EVERY_S / 2)
                self.progress(f"setup {done_count}/{count} sessions")

        reporter = asyncio.get_running_loop().create_task(report())
        try:
            async with asyncio.timeout(timeout):
                done = await asyncio.gather(*(one(first + i) for i in range(count)))
        except TimeoutError:
            self.stats.error(f"setup did not finish within {timeout:g} s")
            done = []
        finally:
            reporter.cancel()
        return [s for s in done if s is not None and s.open]

    async def setup_all(self) -> None:
        cfg = self.config
        warm = cfg.warm if cfg.mode == "idle" else 0
        deadline = time.monotonic() + cfg.setup_timeout
        ready: list[_Session] = []
        if warm:
            ready = await self.setup(0, warm, cfg.setup_timeout)
            await asyncio.sleep(0.5)
        self._memory("proxy_before")
        before = self._snapshot()
        start = time.perf_counter()
        rest = max(deadline - time.monotonic(), 1.0)
        added = await self.setup(warm, cfg.sessions - warm, rest)
        self.setup_seconds = time.perf_counter() - start
        after = self._snapshot()
        self.setup_cpu = cpu_between(before, after)
        self.setup_cpu["sessions"] = len(added)
        self.sessions = ready + added
        self.progress(
            f"{len(self.sessions)}/{cfg.sessions} sessions ready in {self.setup_seconds:.1f} s"
        )

    # -- idle -------------------------------------------------------------------------------

    async def hold_idle(self) -> None:
        """Idle mode: let the proxy settle, then read its memory and its idle CPU."""
        cfg = self.config
        await asyncio.sleep(min(1.0, cfg.hold))
        first = self._snapshot()
        await asyncio.sleep(max(cfg.hold - 1.0, 0.0))
        self._memory("proxy_ready")
        self.idle = cpu_between(first, self._snapshot())
        self.idle["sessions_open"] = sum(1 for s in self.sessions if s.open)

    def _memory(self, key: str) -> None:
        if self.config.proxy_pid is not None:
            self.memory[key] = try_pid(tree_memory_kib, self.config.proxy_pid) or {}

    # -- streaming --------------------------------------------------------------------------

    async def stream(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()
        sessions = self.sessions
        count = len(sessions)
        period_ns = round(1e9 / cfg.rate)
        t0 = time.perf_counter_ns() + 5_000_000  # first frame 5 ms from now
        self.t0_us = (t0 - self.base_ns) // 1000
        window_start_ns = t0 + round(cfg.warmup * 1e9)
        stop_ns = t0 + round(cfg.seconds * 1e9)
        frame = self.frame
        slot = 0
        stats = self.stats
        next_report = t0 + round(PROGRESS_EVERY_S * 1e9)

        def tick() -> None:
            nonlocal slot, next_report
            now = time.perf_counter_ns()
            due = t0 + slot * period_ns // count
            if due <= now:
                stats.max_send_lag_us = max(stats.max_send_lag_us, (now - due) // 1000)
            while due <= now and due < stop_ns:
                if not self.measuring and due >= window_start_ns:
                    self._start_window(now)
                session = sessions[slot % count]
                if session.open:
                    session.send_frame(frame, now)
                    stats.sent_total += 1
                    if self.measuring:
                        stats.sent += 1
                else:
                    stats.send_skipped_closed += 1
                slot += 1
                due = t0 + slot * period_ns // count
                now = time.perf_counter_ns()
            if now >= next_report:
                next_report += round(PROGRESS_EVERY_S * 1e9)
                self._report_streaming(now, t0)
            if due >= stop_ns:
                self._end_window()
                finished.set_result(None)
                return
            # Never below 1 ms: uvloop rounds shorter timers to 0 and would spin.
            loop.call_later(max(due - time.perf_counter_ns(), _MIN_SLEEP_NS) / 1e9, tick)

        self.streaming = True
        gc.collect()
        gc.disable()
        try:
            loop.call_later(max(t0 - time.perf_counter_ns(), 0) / 1e9, tick)
            await finished
            await self._drain()
        finally:
            gc.enable()
            self.streaming = False

    def _report_streaming(self, now_ns: int, t0_ns: int) -> None:
        stats = self.stats
        second = (now_ns - t0_ns) // 1_000_000_000 - 1
        worst = self.tl_max[second] / 1000.0 if 0 <= second < len(self.tl_max) else 0.0
        self.progress(
            f"streaming {(now_ns - t0_ns) / 1e9:.0f}/{self.config.seconds:g} s: "
            f"{stats.sent_total} frames sent, {stats.received_total} echoed, "
            f"worst round trip last second {worst:.1f} ms"
        )

    def _snapshot(self) -> Snapshot:
        cfg = self.config
        return Snapshot(
            time.perf_counter_ns(),
            own_cpu_seconds(),
            try_pid(tree_cpu_seconds, cfg.proxy_pid),
            try_pid(proc_cpu_seconds, cfg.mock_pid),
            try_pid(machine_busy_seconds),
            try_pid(cpu_busy_seconds),
            try_pid(proc_preempted, cfg.proxy_pid),
        )

    def _start_window(self, now_ns: int) -> None:
        # The boundary is the time stamp the next frame will carry, so it falls in the window.
        self.window_start_us = (now_ns - self.base_ns) // 1000
        self.measuring = True
        self.snapshots = [self._snapshot()]

    def _end_window(self) -> None:
        if not self.measuring:  # no frame was due inside the window: an empty window
            self._start_window(time.perf_counter_ns())
        self.measuring = False
        self.window_end_us = self.now_us()
        self.snapshots.append(self._snapshot())
        self._memory("proxy_end")

    async def _drain(self) -> None:
        deadline = time.perf_counter() + self.config.drain
        while self.stats.matched < self.stats.sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)

    async def close_all(self) -> None:
        open_ones = [s for s in self.created if s.open and s.transport is not None]
        for session in open_ones:
            assert session.transport is not None
            session.transport.send_close(WSCloseCode.OK)
        waits = [s.transport.wait_disconnected() for s in open_ones if s.transport is not None]
        try:
            async with asyncio.timeout(3.0):
                await asyncio.gather(*waits, return_exceptions=True)
        except TimeoutError:
            pass
        for session in open_ones:
            if session.transport is not None:
                session.transport.disconnect(False)

    # -- result -----------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        cfg, stats = self.config, self.stats
        out: dict[str, Any] = {"config": asdict(cfg)}
        ready = len(self.sessions)
        added = int(self.setup_cpu.get("sessions", ready))
        out["sessions_ready"] = ready
        out["sessions_failed"] = self.setup_failed
        out["setup_seconds"] = self.setup_seconds
        out["setup_rate_per_s"] = added / self.setup_seconds if self.setup_seconds > 0 else None
        out["setup_ms"] = _percentiles(sorted(self.setup_ms), (50, 99, 100))
        out["setup_cpu"] = self.setup_cpu
        out["frames"] = {
            "sent": stats.sent,
            "received_in_window": stats.received_in_window,
            "matched": stats.matched,
            "lost": stats.sent - stats.matched,
            "sent_total": stats.sent_total,
            "received_total": stats.received_total,
            "unexpected": stats.unexpected,
            "misordered": stats.misordered,
            "short": stats.short_frames,
            "skipped_closed_session": stats.send_skipped_closed,
        }
        out["sessions_closed_while_streaming"] = stats.sessions_closed_while_streaming
        out["max_send_lag_ms"] = stats.max_send_lag_us / 1000.0
        rtts = sorted(stats.rtts_us)
        out["rtt_ms"] = {
            k: v / 1000.0 for k, v in _percentiles(rtts, (50, 90, 99, 99.9, 100)).items()
        }
        out["window"] = self._window()
        out["idle"] = self.idle
        out["timeline"] = [
            {
                "second": i,
                "received": c,
                "rtt_mean_ms": self.tl_sum[i] / c / 1000.0 if c else None,
                "rtt_max_ms": self.tl_max[i] / 1000.0,
            }
            for i, c in enumerate(self.tl_count)
            if cfg.mode == "stream"
        ]
        out["memory_kib"] = self.memory
        out["text_messages"] = dict(stats.text_types)
        out["errors"] = stats.errors
        return out

    def _window(self) -> dict[str, Any]:
        if len(self.snapshots) != 2:
            return {}
        a, b = self.snapshots
        window = cpu_between(a, b)
        relayed = self.stats.sent + self.stats.received_in_window
        window["relayed_frames"] = relayed
        window["proc_cpu_resolution_s"] = CLOCK_RESOLUTION_S
        cpu = window.get("proxy_cpu_seconds")
        if cpu is not None and relayed:
            window["proxy_cpu_us_per_frame"] = cpu * 1e6 / relayed
        return window


def _percentiles(values: Sequence[float], points: Sequence[float]) -> dict[str, float]:
    """Nearest-rank percentiles of sorted ``values`` (empty → no keys)."""
    if not values:
        return {}
    out: dict[str, float] = {}
    n = len(values)
    for p in points:
        rank = max(1, min(n, -(-p * n // 100)))  # ceil(p·n/100), clamped to 1..n
        out[f"p{p:g}"] = float(values[int(rank) - 1])
    return out


def time_cap(config: LoadConfig) -> float:
    """The longest :func:`run_load` may take before it gives up (then it still closes)."""
    busy = config.seconds + config.drain if config.mode == "stream" else config.hold + 1.0
    return config.setup_timeout + busy + 10.0


async def run_load(config: LoadConfig) -> dict[str, Any]:
    """Set up, stream (or hold idle), measure, close; the result as a JSON-ready dict."""
    config.validate()
    gen = _Generator(config)
    cap = time_cap(config)
    try:
        async with asyncio.timeout(cap):
            await gen.setup_all()
            if gen.sessions and config.mode == "stream":
                await gen.stream()
            elif gen.sessions:
                await gen.hold_idle()
    except TimeoutError:
        gen.stats.error(f"load generator gave up after {cap:g} s")
    finally:
        gen.progress("closing sessions")
        await gen.close_all()
    return gen.result()


def _raise_fd_limit() -> None:
    """Every session is a socket: take the hard limit of open files (1024 is a common soft one)."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass


def _parser() -> argparse.ArgumentParser:
    d = LoadConfig(url="")
    p = argparse.ArgumentParser(
        prog="python -m fastproxy.tools.loadgen",
        description=(__doc__ or "").split("\n\n")[0],
    )
    p.add_argument("--url", required=True, help="proxy WebSocket URL")
    p.add_argument("--sessions", type=int, default=d.sessions)
    p.add_argument("--seconds", type=float, default=d.seconds, help="streaming time, warm-up incl.")
    p.add_argument("--rate", type=float, default=d.rate, help="frames per second per session")
    p.add_argument("--warmup", type=float, default=d.warmup)
    p.add_argument("--frame-bytes", type=int, default=None, help="default: 20 ms of audio")
    p.add_argument("--encoding", choices=sorted(ENCODINGS), default=d.encoding)
    p.add_argument("--sample-rate", type=int, default=d.sample_rate)
    p.add_argument("--mode", choices=("stream", "idle"), default=d.mode)
    p.add_argument("--warm", type=int, default=d.warm)
    p.add_argument("--hold", type=float, default=d.hold)
    p.add_argument("--connect-concurrency", type=int, default=d.connect_concurrency)
    p.add_argument("--connect-timeout", type=float, default=d.connect_timeout)
    p.add_argument("--setup-timeout", type=float, default=d.setup_timeout)
    p.add_argument("--drain", type=float, default=d.drain)
    p.add_argument("--proxy-pid", type=int, default=None)
    p.add_argument("--mock-pid", type=int, default=None)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load described by ``argv`` and print the result as one JSON line."""
    ns = _parser().parse_args(argv)
    values = dict(vars(ns))
    if values["frame_bytes"] is None:
        values["frame_bytes"] = frame_bytes(ns.encoding, ns.sample_rate)
    config = LoadConfig(**values)
    try:
        config.validate()
    except ValueError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    _raise_fd_limit()
    import uvloop

    result: dict[str, Any] = uvloop.run(run_load(config))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
