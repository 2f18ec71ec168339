"""The load generator of the end-to-end benchmark: N client sessions in one uvloop process.

``python -m fastproxy.tools.loadgen --url ws://127.0.0.1:PORT/openai --sessions N ...`` connects
N Deepgram-style sessions (``Welcome`` → ``Settings`` → ``SettingsApplied``, bounded concurrency
and timeouts), then streams 20 ms linear16 24 kHz frames on every session at ``--rate`` frames/s
and matches the echoes the proxy relays back from the mock upstream (echo mode). It prints one
JSON object with the raw figures on stdout; :mod:`fastproxy.tools.bench` starts it and formats.

Why it is shaped this way, so the generator is never the bottleneck and the figures are honest:

- One timer drives every send. Session ``i`` of ``N`` is due at ``t0 + i·T/N + k·T``
  (``T`` = 1/rate), so sends are spread evenly; each wake-up sends every frame already due and
  sleeps until the next one, at least 1 ms (uvloop timers have 1 ms resolution, so ≈ rate·N/1000
  frames per wake-up; a frame leaves up to ~1 ms after its slot and carries its real send
  time). The schedule is open-loop: a late wake-up sends late, it never skips or re-bases.
- Each frame's first 8 bytes are ``<uint32 sequence, uint32 send time in µs>``; linear16 24 kHz
  is passthrough (§4.4), so the echo carries them back unchanged and a round trip needs no table.
- The measurement window starts ``--warmup`` seconds after streaming starts and ends when the
  last frame is sent. Proxy and mock CPU (``/proc/PID/stat`` utime+stime, all threads), the
  generator's own CPU (``getrusage``) and the frame counters are snapshotted at both ends in the
  same thread, so they cover the same interval. ``sent`` counts frames sent in the window,
  ``received_in_window`` echoes that arrived in it (together: the frames the proxy relayed in
  that interval); ``matched`` counts echoes of frames sent in the window, waited for up to
  ``--drain`` seconds after it (``lost = sent − matched``); round trips are those of matched frames.
- The garbage collector is off while streaming: the hot path allocates no cycles, and a
  collection pause in the generator would show up as proxy latency.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import struct
import sys
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = ["LoadConfig", "main", "proc_cpu_seconds", "proc_memory_kib", "run_load"]

HEADER = struct.Struct("<II")  # sequence number, send time (µs since the generator's base)
SETTINGS = json.dumps(
    {
        "type": "Settings",
        "audio": {
            "input": {"encoding": "linear16", "sample_rate": 24000},
            "output": {"encoding": "linear16", "sample_rate": 24000, "container": "none"},
        },
    }
).encode()
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_MAX_ERRORS_KEPT = 20
_BINARY = WSMsgType.BINARY
_TEXT = WSMsgType.TEXT
_CLOSE = WSMsgType.CLOSE
_US32 = 0xFFFFFFFF
_NOT_YET = 1 << 62
_MIN_SLEEP_NS = 1_000_000
MAX_RUN_S = 3600.0  # send times are 32-bit µs: must stay well under 71 minutes


@dataclass
class LoadConfig:
    url: str
    sessions: int = 200
    seconds: float = 20.0
    rate: float = 50.0
    warmup: float = 2.0
    frame_bytes: int = 960
    connect_concurrency: int = 50
    connect_timeout: float = 10.0
    setup_timeout: float = 60.0
    drain: float = 2.0
    proxy_pid: int | None = None
    mock_pid: int | None = None

    def validate(self) -> None:
        if self.sessions < 1 or self.rate <= 0 or self.frame_bytes < HEADER.size:
            raise ValueError("need sessions >= 1, rate > 0 and frame_bytes >= 8")
        if not 0 <= self.warmup < self.seconds <= MAX_RUN_S:
            raise ValueError(f"need 0 <= warmup < seconds <= {MAX_RUN_S:g}")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid``, in seconds (``/proc/PID/stat`` fields 14, 15)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of ``pid`` in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith((b"VmRSS:", b"VmHWM:")):
                key, value = line.split(b":", 1)
                out[key.decode()] = int(value.split()[0])
    return out


def machine_busy_seconds() -> float:
    """Busy time of all CPUs together (``/proc/stat``: all but idle and iowait), in seconds."""
    with open("/proc/stat", "rb") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / _CLK_TCK


def proc_preempted(pid: int) -> int:
    """``nonvoluntary_ctxt_switches`` of ``pid``'s main thread: how often it was preempted."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"nonvoluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise ValueError("no nonvoluntary_ctxt_switches")


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class _Snapshot:
    wall_ns: int
    own_cpu: float
    proxy_cpu: float | None
    mock_cpu: float | None
    machine_busy: float | None  # every CPU's busy time, seconds (/proc/stat)
    proxy_preempted: int | None  # nonvoluntary context switches of the proxy's main thread


@dataclass
class _Stats:
    sent: int = 0  # in the window
    sent_total: int = 0
    received_in_window: int = 0
    matched: int = 0
    received_total: int = 0
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
        gen.created.append(self)

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.open = True

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == _BINARY:  # the hot path: one echoed frame
            now_us = ((time.perf_counter_ns() - self.gen.base_ns) // 1000) & _US32
            stats = self.gen.stats
            stats.received_total += 1
            if frame.payload_size < HEADER.size:
                stats.short_frames += 1
                return
            seq, sent_us = HEADER.unpack_from(frame.get_payload_as_memoryview())
            if seq != self.rx_next:
                stats.misordered += 1
            self.rx_next = seq + 1
            gen = self.gen
            rtt = (now_us - sent_us) & _US32
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
                stats.rtts_us.append(rtt)
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
        HEADER.pack_into(frame, 0, self.tx_seq, ((now_ns - self.gen.base_ns) // 1000) & _US32)
        self.tx_seq += 1
        assert self.transport is not None
        self.transport.send(_BINARY, frame)  # copies: the template can be reused at once


class _Generator:
    """All sessions, the send schedule, the measurement window and the result."""

    def __init__(self, config: LoadConfig) -> None:
        self.config = config
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
        self.snapshots: list[_Snapshot] = []
        self.memory: dict[str, dict[str, int]] = {}
        self.frame = bytearray(config.frame_bytes)
        self.t0_us = _NOT_YET
        seconds = int(config.seconds + config.drain) + 2
        self.tl_count = array("Q", bytes(8 * seconds))
        self.tl_sum = array("Q", bytes(8 * seconds))
        self.tl_max = array("Q", bytes(8 * seconds))

    def now_us(self) -> int:
        return (time.perf_counter_ns() - self.base_ns) // 1000

    # -- setup ------------------------------------------------------------------------------

    async def setup(self) -> None:
        cfg = self.config
        gate = asyncio.Semaphore(cfg.connect_concurrency)
        start = time.perf_counter()

        async def one(index: int) -> _Session | None:
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
                        session.transport.send(_TEXT, SETTINGS)
                        await session.applied
                except Exception as exc:
                    self.setup_failed += 1
                    self.stats.error(f"session {index} setup: {type(exc).__name__}: {exc}")
                    if session is not None and session.transport is not None:
                        session.transport.disconnect(False)
                    return None
                self.setup_ms.append((time.perf_counter() - began) * 1000.0)
                return session

        try:
            async with asyncio.timeout(cfg.setup_timeout):
                done = await asyncio.gather(*(one(i) for i in range(cfg.sessions)))
        except TimeoutError:
            self.stats.error(f"setup did not finish within {cfg.setup_timeout:g} s")
            done = []
        self.setup_seconds = time.perf_counter() - start
        self.sessions = [s for s in done if s is not None and s.open]

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

        def tick() -> None:
            nonlocal slot
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

    def _snapshot(self) -> _Snapshot:
        cfg = self.config
        return _Snapshot(
            time.perf_counter_ns(),
            _own_cpu_seconds(),
            _try(proc_cpu_seconds, cfg.proxy_pid),
            _try(proc_cpu_seconds, cfg.mock_pid),
            _try(machine_busy_seconds),
            _try(proc_preempted, cfg.proxy_pid),
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
        if self.config.proxy_pid is not None:
            self.memory["proxy_end"] = _try(proc_memory_kib, self.config.proxy_pid) or {}

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
        out["sessions_ready"] = ready
        out["sessions_failed"] = self.setup_failed
        out["setup_seconds"] = self.setup_seconds
        out["setup_rate_per_s"] = ready / self.setup_seconds if self.setup_seconds > 0 else None
        out["setup_ms"] = _percentiles(sorted(self.setup_ms), (50, 99, 100))
        out["frames"] = {
            "sent": stats.sent,
            "received_in_window": stats.received_in_window,
            "matched": stats.matched,
            "lost": stats.sent - stats.matched,
            "sent_total": stats.sent_total,
            "received_total": stats.received_total,
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
        out["timeline"] = [
            {
                "second": i,
                "received": c,
                "rtt_mean_ms": self.tl_sum[i] / c / 1000.0 if c else None,
                "rtt_max_ms": self.tl_max[i] / 1000.0,
            }
            for i, c in enumerate(self.tl_count)
        ]
        out["memory_kib"] = self.memory
        out["text_messages"] = dict(stats.text_types)
        out["errors"] = stats.errors
        return out

    def _window(self) -> dict[str, Any]:
        if len(self.snapshots) != 2:
            return {}
        a, b = self.snapshots
        wall = (b.wall_ns - a.wall_ns) / 1e9
        window: dict[str, Any] = {"seconds": wall, "proc_cpu_resolution_s": 1 / _CLK_TCK}
        relayed = self.stats.sent + self.stats.received_in_window
        window["relayed_frames"] = relayed
        window["loadgen_cpu_percent"] = 100.0 * (b.own_cpu - a.own_cpu) / wall if wall else None
        for name, before, after in (
            ("proxy", a.proxy_cpu, b.proxy_cpu),
            ("mock", a.mock_cpu, b.mock_cpu),
        ):
            if before is None or after is None or not wall:
                continue
            cpu = after - before
            window[f"{name}_cpu_seconds"] = cpu
            window[f"{name}_cpu_percent"] = 100.0 * cpu / wall
            if name == "proxy" and relayed:
                window["proxy_cpu_us_per_frame"] = cpu * 1e6 / relayed
        if a.proxy_preempted is not None and b.proxy_preempted is not None and wall:
            window["proxy_preempted_per_s"] = (b.proxy_preempted - a.proxy_preempted) / wall
        ours = [(a.own_cpu, b.own_cpu), (a.proxy_cpu, b.proxy_cpu), (a.mock_cpu, b.mock_cpu)]
        if a.machine_busy is not None and b.machine_busy is not None and wall:
            others = b.machine_busy - a.machine_busy
            others -= sum(y - x for x, y in ours if x is not None and y is not None)
            window["other_processes_cpu_percent"] = max(0.0, 100.0 * others / wall)
        return window


def _try(fn: Any, *pid: int | None) -> Any:
    """``fn(*pid)``, or None when the pid is unknown or ``/proc`` cannot tell (process gone)."""
    if None in pid:
        return None
    try:
        return fn(*pid)
    except (OSError, ValueError, IndexError):
        return None


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


async def run_load(config: LoadConfig) -> dict[str, Any]:
    """Set up, stream, measure, close; the result as a JSON-ready dict."""
    config.validate()
    gen = _Generator(config)
    if config.proxy_pid is not None:
        gen.memory["proxy_idle"] = _try(proc_memory_kib, config.proxy_pid) or {}
    cap = config.setup_timeout + config.seconds + config.drain + 10.0
    try:
        async with asyncio.timeout(cap):
            await gen.setup()
            if gen.sessions:
                await gen.stream()
    except TimeoutError:
        gen.stats.error(f"load generator gave up after {cap:g} s")
    finally:
        await gen.close_all()
    return gen.result()


def _parser() -> argparse.ArgumentParser:
    d = LoadConfig(url="")
    p = argparse.ArgumentParser(prog="python -m fastproxy.tools.loadgen", description=__doc__)
    p.add_argument("--url", required=True, help="proxy WebSocket URL")
    p.add_argument("--sessions", type=int, default=d.sessions)
    p.add_argument("--seconds", type=float, default=d.seconds, help="streaming time, warm-up incl.")
    p.add_argument("--rate", type=float, default=d.rate, help="frames per second per session")
    p.add_argument("--warmup", type=float, default=d.warmup)
    p.add_argument("--frame-bytes", type=int, default=d.frame_bytes)
    p.add_argument("--connect-concurrency", type=int, default=d.connect_concurrency)
    p.add_argument("--connect-timeout", type=float, default=d.connect_timeout)
    p.add_argument("--setup-timeout", type=float, default=d.setup_timeout)
    p.add_argument("--drain", type=float, default=d.drain)
    p.add_argument("--proxy-pid", type=int, default=None)
    p.add_argument("--mock-pid", type=int, default=None)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load described by ``argv`` and print the result as one JSON line."""
    ns = _parser().parse_args(argv)
    config = LoadConfig(**{k: v for k, v in vars(ns).items()})
    try:
        config.validate()
    except ValueError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    import uvloop

    result: dict[str, Any] = uvloop.run(run_load(config))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
