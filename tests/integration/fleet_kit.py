"""Shared kit of the process-level tests (workers, drain, nginx): real ``fastproxy serve``
processes, real sockets on 127.0.0.1, picows clients.

``Fleet`` starts ``python -m fastproxy serve`` in its own process group (so a test can always
kill the supervisor *and* its workers) with an environment stripped of every ``FASTPROXY_*`` /
``OPENAI_*`` variable, JSON logs to a file, and waits until it listens. ``Client`` is a picows
listener that records JSON messages, counts binary frames and notes the close. ``one_turn`` is
the standard session: Welcome, Settings, SettingsApplied, some binary audio, one
``InjectUserMessage`` answered with agent audio and ``AgentAudioDone``, then a clean close.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
FRAME = bytes(range(256)) * 3 + bytes(192)  # 960 bytes: 20 ms of 24 kHz PCM16
SETTINGS = b'{"type":"Settings"}'
LOG_JSON = ("--log-format", "json")
INJECT = b'{"type":"InjectUserMessage","content":"hello"}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FASTPROXY_", "OPENAI_", "PROMETHEUS_"))
        or k == "FASTPROXY_NO_EXTENSIONS"
    }
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
    env.update(extra)
    return env


# --------------------------------------------------------------------------- processes


@dataclass
class Fleet:
    """One ``fastproxy serve`` process (with its workers, if any)."""

    port: int
    log_path: Path
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str = "/openai") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    out.append(record)
        return out

    def worker_pids(self) -> dict[int, int]:
        """The latest pid of each worker index, from the supervisor's ``worker I started``."""
        pids: dict[int, int] = {}
        for r in self.records():
            if r.get("logger") == "fastproxy.supervisor" and "started (pid" in r.get("message", ""):
                pids[int(r["worker"])] = int(r["pid"])
        return pids

    def kill(self) -> None:
        """SIGKILL the whole process group (supervisor and workers); always safe to call."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> int | None:
        """SIGINT (immediate stop), bounded; then kill whatever is left. Returns the status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        code = self.proc.poll()
        self.kill()
        return code


def start_fleet(
    tmp: Path,
    *args: str,
    env: dict[str, str] | None = None,
    ready: Callable[[Fleet], bool] | None = None,
) -> Fleet:
    """Start ``fastproxy serve --port P --log-format json *args`` and wait until ``ready`` (by
    default: the ``listening`` record, which the supervisor writes once every worker listens).
    A supervisor's per-run metrics directory goes under ``tmp/metrics``."""
    port = free_port()
    log_path = tmp / f"serve-{port}.log"
    env = dict(env if env is not None else clean_env())
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(tmp / "metrics"))
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastproxy", "serve", "--port", str(port), *LOG_JSON, *args],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches the workers too
        )
    fleet = Fleet(port, log_path, proc)
    check = ready or (lambda f: any(r.get("event") == "listening" for r in f.records()))
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not check(fleet):
            if proc.poll() is not None:
                raise AssertionError(
                    f"fastproxy serve exited ({proc.returncode}):\n{fleet.log_text()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"not listening after {START_TIMEOUT_S}s:\n{fleet.log_text()}")
            time.sleep(0.05)
    except BaseException:
        fleet.kill()
        raise
    return fleet


# --------------------------------------------------------------------------- HTTP


async def http_request(
    port: int, path: str, *, upgrade: bool = False, timeout: float = 5.0
) -> tuple[int, bytes]:
    """A plain GET (or a WebSocket upgrade request); returns (status, body)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if upgrade:
        head += (
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        )
    writer.write(
        (head + "Connection: close\r\n\r\n").encode() if not upgrade else (head + "\r\n").encode()
    )
    try:
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        headers: dict[str, str] = {}
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(status_line.split()[1])
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
        return status, body
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` as {(sample name, sorted labels): value}."""
    status, body = await http_request(port, "/metrics")
    assert status == 200, (status, body[:200])
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


# --------------------------------------------------------------------------- clients


class Client(WSListener):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.transport: WSTransport | None = None
        self.messages: list[dict[str, Any]] = []
        self.binary_frames = 0
        self.binary_bytes = 0
        self.close_code: int | None = None
        self.close_at: float | None = None
        self.disconnected_at: float | None = None
        self.changed = asyncio.Event()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        mt = frame.msg_type
        if mt == WSMsgType.TEXT:
            self.messages.append(json.loads(frame.get_payload_as_bytes()))
        elif mt == WSMsgType.BINARY:
            self.binary_frames += 1
            self.binary_bytes += frame.payload_size
        elif mt == WSMsgType.CLOSE:
            if self.close_code is None:
                self.close_code = int(frame.get_close_code())
                self.close_at = time.monotonic()
            if not transport.is_close_frame_sent:
                transport.send_close(WSCloseCode.OK)
            transport.disconnect()
        else:
            return
        self.changed.set()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.disconnected_at = time.monotonic()
        self.changed.set()

    @property
    def gone(self) -> bool:
        return self.disconnected_at is not None

    def count(self, type_: str) -> int:
        return sum(1 for m in self.messages if m.get("type") == type_)

    def first(self, type_: str) -> dict[str, Any]:
        return next(m for m in self.messages if m.get("type") == type_)

    async def wait(self, predicate: Callable[[Client], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self):
                if self.gone:
                    raise ConnectionError(
                        f"closed ({self.close_code}) while waiting: {self.messages}"
                    )
                self.changed.clear()
                await self.changed.wait()

    async def wait_type(self, type_: str, count: int = 1, timeout: float = 10.0) -> None:
        await self.wait(lambda c: c.count(type_) >= count, timeout)

    async def wait_gone(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not self.gone:
                self.changed.clear()
                await self.changed.wait()

    def send_text(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, data)

    def send_audio(self, frames: int) -> None:
        assert self.transport is not None
        for _ in range(frames):
            self.transport.send(WSMsgType.BINARY, FRAME)

    async def close(self, timeout: float = 5.0) -> None:
        if self.transport is not None and not self.gone:
            if not self.transport.is_close_frame_sent:
                self.transport.send_close(WSCloseCode.OK)
            with contextlib.suppress(TimeoutError):
                await self.wait_gone(timeout)
            self.transport.disconnect()


async def open_session(url: str, timeout: float = 10.0) -> Client:
    """Connect, wait for Welcome, send Settings, wait for SettingsApplied."""
    _, client = await asyncio.wait_for(
        ws_connect(Client, url, websocket_handshake_timeout=timeout), timeout
    )
    assert isinstance(client, Client)
    await client.wait_type("Welcome", timeout=timeout)
    client.send_text(SETTINGS)
    await client.wait_type("SettingsApplied", timeout=timeout)
    return client


async def turn(client: Client, audio_frames: int = 5, timeout: float = 15.0) -> int:
    """Send audio, then one InjectUserMessage; wait for its AgentAudioDone. Returns the agent
    audio bytes this turn brought."""
    before_bytes, before_done = client.binary_bytes, client.count("AgentAudioDone")
    client.send_audio(audio_frames)
    client.send_text(INJECT)
    await client.wait_type("AgentAudioDone", before_done + 1, timeout=timeout)
    got = client.binary_bytes - before_bytes
    assert got > 0, "no agent audio before AgentAudioDone"
    return got


async def one_turn(url: str, audio_frames: int = 5) -> Client:
    client = await open_session(url)
    try:
        await turn(client, audio_frames)
    finally:
        await client.close()
    return client


async def bounded_gather(
    factories: Iterable[Callable[[], Awaitable[T]]], concurrency: int
) -> list[T | BaseException]:
    """Run the coroutines ``concurrency`` at a time; exceptions are returned, not raised."""
    gate = asyncio.Semaphore(concurrency)

    async def run(factory: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await factory()

    return list(await asyncio.gather(*(run(f) for f in factories), return_exceptions=True))


def failures(results: list[Any]) -> list[BaseException]:
    return [r for r in results if isinstance(r, BaseException)]


@dataclass
class Deadline:
    seconds: float
    start: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        return max(0.0, self.start + self.seconds - time.monotonic())

    def __bool__(self) -> bool:
        return self.left() > 0
