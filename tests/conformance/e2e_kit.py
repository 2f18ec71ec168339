"""End-to-end harness for the conformance suite: a real ProxyServer, a real MockUpstream and real
WebSocket clients on 127.0.0.1, all in one event loop (uvloop or the default asyncio loop).

Theory of operation. ``Env`` starts a :class:`~fastproxy.testing.MockUpstream` (PROTOCOL.md §13.1
H2 by default: ``session.created`` on open, ``session.updated`` per ``session.update``, nothing
else; ``confirming=True`` adds item confirmations) and a ``ProxyServer`` whose ``Config`` comes
from ``load_config`` with H1's defaults (API key ``sk-test``, loopback, ``upstream_url`` = the
mock) plus per-test overrides given as setting names (``Env(loop, sequencer_timeout_ms=500)``).
Clients are picows client WebSockets (:class:`Client`) that record every message with its opcode
and ``time.monotonic()`` arrival time, the close code and reason, and can send text, binary and
fragmented frames. Plain HTTP requests (404/401/403/429/503 answers) go through asyncio streams
(:func:`http_request`).

Everything is timed with ``time.monotonic()``, the clock the mock uses for ``Received.t``, so
client arrival times and upstream receive times are comparable. The proxy's writes are also
tapped at the Session-action level (``Client.writes``): the order in which the connection wrote
``SendClient`` / ``SendUpstream`` messages, which proves "written before" facts that arrival
times on two sockets cannot.

On exit the environment checks the wire contract for every connection it saw (W3, W4, J1, J6),
that no proxy code raised (no log record with ``exc_info``, no loop exception, no
``internal_error`` violation), and stops everything.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import msgspec
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect
from spec_examples import DEFAULT_SESSION as DEFAULT_SESSION
from spec_examples import PCM24 as PCM24
from spec_examples import S0 as S0
from spec_examples import SEMANTIC_VAD as SEMANTIC_VAD
from spec_examples import SERVER_VAD as SERVER_VAD
from spec_examples import TRANSCRIPTION as TRANSCRIPTION
from spec_examples import Z as Z
from spec_examples import (
    audio_delta,
    error_event,
    function_call_arguments_done,
    response_created,
    response_done,
)
from spec_examples import audio_done as audio_done
from spec_examples import text_done as text_done
from spec_examples import transcript_delta as transcript_delta
from spec_examples import transcript_done as transcript_done

from fastproxy.config import SETTINGS, load_config
from fastproxy.net.server import ProxyServer
from fastproxy.protocol import actions as act
from fastproxy.testing import MockBehaviour, MockConnection, MockUpstream
from fastproxy.testing.scripts import Pause
from fastproxy.testing.waiters import Waiters

T = TypeVar("T")
Event = dict[str, Any]

LOOP_KINDS = ("uvloop", "asyncio")
TEST_TIMEOUT_S = 60.0
# H5: "nothing" means no message within 500 ms. Scenarios that state a window get it exactly;
# the implicit "nothing" after a message uses 300 ms, which on loopback is far longer than any
# synchronous reaction takes, and keeps the suite inside its time budget.
QUIET_S = 0.3
SPEC_QUIET_S = 0.5
API_KEY = "sk-test"

# --------------------------------------------------------------------------------------------
# constants and builders (§13.1); the ones the unit suite uses too come from tests/spec_examples.py
# and are re-exported from here (S0, PCM24, SERVER_VAD, ..., and the builders below)

created = response_created
done = response_done
delta = audio_delta
fcall = function_call_arguments_done
upstream_error = error_event

SUPPORTED_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)


def _pattern(size: int) -> bytes:
    # H7: one fixed non-silent pattern; consecutive 16-bit samples all differ and none is 0.
    out = bytearray()
    x = 12345
    while len(out) < size:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        sample = ((x >> 8) % 20000) + 1000
        if (x >> 4) & 1:
            sample = -sample
        out += sample.to_bytes(2, "little", signed=True)
    return bytes(out[:size])


_PATTERN = _pattern(1 << 16)


def A(n: int, offset: int = 0) -> bytes:
    """``n`` bytes of non-silent PCM from one fixed pattern, starting ``offset`` bytes in."""
    reps = (offset + n) // len(_PATTERN) + 1
    return (_PATTERN * reps)[offset : offset + n] if reps > 1 else _PATTERN[offset : offset + n]


def speech_started(item_id: str = "item_u1", ms: int = 1000) -> Event:
    return {"type": "input_audio_buffer.speech_started", "audio_start_ms": ms, "item_id": item_id}


def speech_stopped(item_id: str = "item_u1", ms: int = 2400) -> Event:
    return {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ms, "item_id": item_id}


def item_added(item_id: str, item_type: str = "message", **fields: Any) -> Event:
    return {
        "type": "conversation.item.added",
        "previous_item_id": None,
        "item": {"id": item_id, "type": item_type, **fields},
    }


def strip(event: Event) -> Event:
    """``event`` without its ``event_id`` (H5)."""
    return {k: v for k, v in event.items() if k != "event_id"}


def decode_append(event: Event) -> bytes:
    return base64.b64decode(event["audio"], validate=True)


def now() -> float:
    return time.monotonic()


def send_at(u: MockConnection, *events: Event) -> float:
    """Send ``events`` from the mock and return the time they were written."""
    t = now()
    for event in events:
        u.send(event)
    return t


# --------------------------------------------------------------------------------------------
# the upstream side (a MockConnection) seen by a test


def up_events(u: MockConnection, *, appends: bool = True) -> list[Event]:
    """Events the proxy sent upstream on ``u``, in order, without ``event_id``."""
    out = []
    for e in u.events:
        if not appends and e.get("type") == "input_audio_buffer.append":
            continue
        out.append(strip(e))
    return out


def up_types(u: MockConnection, *, appends: bool = True) -> list[str]:
    return [e.get("type", "?") for e in up_events(u, appends=appends)]


def up_of(u: MockConnection, type_: str) -> list[Event]:
    return [strip(e) for e in u.events_of(type_)]


def up_appended(u: MockConnection) -> list[bytes]:
    """The decoded audio of every ``input_audio_buffer.append`` received on ``u``."""
    return [decode_append(e) for e in u.events_of("input_audio_buffer.append")]


def up_times(u: MockConnection, type_: str) -> list[float]:
    return [r.t for r in u.received if r.type == type_]


# --------------------------------------------------------------------------------------------
# the client


@dataclasses.dataclass(slots=True)
class Msg:
    """One message received by a client: ``kind`` "text" or "binary", the raw ``data``, the
    parsed JSON ``obj`` of a text message (None if it is not a JSON object) and its arrival
    time ``t`` (``time.monotonic()``)."""

    t: float
    kind: str
    data: bytes
    obj: Event | None = None

    @property
    def type(self) -> str | None:
        if self.obj is None:
            return None
        t = self.obj.get("type")
        return t if isinstance(t, str) else None


class Client(WSListener):  # type: ignore[misc]
    """A recording client WebSocket (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.transport: WSTransport | None = None
        self.messages: list[Msg] = []
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.close_at: float | None = None
        self.disconnected_at: float | None = None
        self.connected_at: float | None = None
        self.up: MockConnection | None = None  # set by Env.connect when known
        self.conn: Any = None  # the proxy's Connection (set by Env)
        self.request_id: str | None = None
        self._frag_kind: str | None = None
        self._frag = bytearray()
        self._waiters: Waiters[Client] = Waiters(self)
        self._writable: asyncio.Event | None = None
        self.answer_close = True  # False: ignore the peer's close frame (§3.6 2000 ms rule)

    # -- picows callbacks -----------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.connected_at = now()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        mt = frame.msg_type
        if mt == WSMsgType.CLOSE:
            if self.close_code is None:
                self.close_code = int(frame.get_close_code())
                self.close_reason = frame.get_close_reason() or ""
                self.close_at = now()
            if self.answer_close:
                if not transport.is_close_frame_sent:
                    transport.send_close(WSCloseCode.OK)
                transport.disconnect()
            self._notify()
            return
        if mt in (WSMsgType.PING, WSMsgType.PONG):
            return
        if mt == WSMsgType.CONTINUATION:
            self._frag += frame.get_payload_as_memoryview()
            if frame.fin and self._frag_kind is not None:
                self._record(self._frag_kind, bytes(self._frag))
                self._frag_kind = None
                self._frag = bytearray()
            return
        kind = "text" if mt == WSMsgType.TEXT else "binary"
        if not frame.fin:
            self._frag_kind = kind
            self._frag = bytearray(frame.get_payload_as_memoryview())
            return
        self._record(kind, frame.get_payload_as_bytes())

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.disconnected_at = now()
        self._set_writable(True)
        self._notify()

    def pause_writing(self) -> None:
        self._set_writable(False)

    def resume_writing(self) -> None:
        self._set_writable(True)

    def _set_writable(self, writable: bool) -> None:
        if self._writable is None:
            self._writable = asyncio.Event()
        if writable:
            self._writable.set()
        else:
            self._writable.clear()

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark (flow
        control), so a test can send "as fast as flow control allows"."""
        if self._writable is not None:
            await self._writable.wait()

    def _record(self, kind: str, data: bytes) -> None:
        obj = None
        if kind == "text":
            try:
                parsed = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                parsed = None
            obj = parsed if isinstance(parsed, dict) else None
        self.messages.append(Msg(now(), kind, data, obj))
        self._notify()

    def _notify(self) -> None:
        self._waiters.notify()

    # -- sending ----------------------------------------------------------------------------------

    def send(self, message: Event | str | bytes) -> None:
        """A dict is sent as compact JSON text, a str as text, bytes as a binary message."""
        assert self.transport is not None
        if isinstance(message, dict):
            self.transport.send(WSMsgType.TEXT, msgspec.json.encode(message))
        elif isinstance(message, str):
            self.transport.send(WSMsgType.TEXT, message.encode())
        else:
            self.transport.send(WSMsgType.BINARY, message)

    def send_text(self, data: bytes | str) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, data.encode() if isinstance(data, str) else data)

    def send_binary(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.BINARY, data)

    def send_fragments(self, parts: Sequence[bytes], *, binary: bool = False) -> None:
        """One message as ``len(parts)`` frames: FIN=0 first frame, continuations, FIN=1 (W6)."""
        assert self.transport is not None
        first = WSMsgType.BINARY if binary else WSMsgType.TEXT
        for i, part in enumerate(parts):
            msg_type = first if i == 0 else WSMsgType.CONTINUATION
            self.transport.send(msg_type, part, fin=i == len(parts) - 1)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.transport is not None and not self.transport.is_close_frame_sent:
            self.transport.send_close(WSCloseCode(code), reason.encode())

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.disconnect(False)

    # -- reading ----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.disconnected_at is not None

    def json(self, since: int = 0) -> list[Event]:
        """Parsed JSON of every text message from index ``since`` (non-objects skipped)."""
        return [m.obj for m in self.messages[since:] if m.obj is not None]

    def types(self, since: int = 0) -> list[str]:
        """Message types from index ``since``; binary messages appear as ``"<binary>"``."""
        return [
            (m.type or "<invalid>") if m.kind == "text" else "<binary>"
            for m in self.messages[since:]
        ]

    def of(self, type_: str, since: int = 0) -> list[Event]:
        return [m.obj for m in self.messages[since:] if m.obj is not None and m.type == type_]

    def binaries(self, since: int = 0) -> list[bytes]:
        return [m.data for m in self.messages[since:] if m.kind == "binary"]

    def mark(self) -> int:
        return len(self.messages)

    def first(self, type_: str, since: int = 0) -> Msg | None:
        for m in self.messages[since:]:
            if m.type == type_:
                return m
        return None

    @property
    def writes(self) -> list[tuple[str, str]]:
        """``(leg, type)`` of every JSON message the proxy's connection wrote, in write order
        (leg "client" or "upstream"), from the moment the connection was tapped."""
        return list(getattr(self.conn, "_e2e_writes", []))

    @property
    def stats(self) -> Any:
        return self.conn.session.stats

    # -- waiting ----------------------------------------------------------------------------------

    async def wait(self, predicate: Callable[[Client], T | None], timeout: float = 5.0) -> T:
        return await self._waiters.wait(
            predicate,
            timeout,
            lambda: (
                f"client (received {self.types()[-40:]}, "
                f"close={self.close_code} {self.close_reason!r})"
            ),
        )

    async def wait_type(
        self, type_: str, count: int = 1, since: int = 0, timeout: float = 5.0
    ) -> Event:
        """The ``count``-th message of ``type_`` received from index ``since`` (waits)."""

        def check(c: Client) -> Event | None:
            found = c.of(type_, since)
            return found[count - 1] if len(found) >= count else None

        return await self.wait(check, timeout)

    async def wait_msg(
        self, match: Callable[[Msg], bool], since: int = 0, timeout: float = 5.0
    ) -> Msg:
        def check(c: Client) -> Msg | None:
            for m in c.messages[since:]:
                if match(m):
                    return m
            return None

        return await self.wait(check, timeout)

    async def wait_binaries(self, count: int, since: int = 0, timeout: float = 5.0) -> list[bytes]:
        return await self.wait(
            lambda c: c.binaries(since) if len(c.binaries(since)) >= count else None, timeout
        )

    async def wait_closed(self, timeout: float = 5.0) -> None:
        await self.wait(lambda c: c.closed, timeout)


# --------------------------------------------------------------------------------------------
# plain HTTP


@dataclasses.dataclass(slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


async def http_request(
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    upgrade: bool = True,
    method: str = "GET",
    timeout: float = 5.0,
) -> HttpResponse:
    """Send one HTTP/1.1 request (a WebSocket upgrade unless ``upgrade`` is False) and read the
    status, headers and (unless the status is 101) the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        if upgrade:
            lines += [
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version: 13",
            ]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        async with asyncio.timeout(timeout):
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split()[1])
            hdrs: dict[str, str] = {}
            for line in header_lines:
                if ":" in line:
                    k, _, v = line.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
            body = b""
            if status != 101:
                length = hdrs.get("content-length")
                if length is not None:
                    body = await reader.readexactly(int(length))
                else:
                    body = await reader.read()
        return HttpResponse(status, hdrs, body)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


# --------------------------------------------------------------------------------------------
# logs


class LogCapture(logging.Handler):
    """Collects every record of the proxy's loggers (the mock's own records are left out)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("fastproxy.testing"):
            return
        self.records.append(record)


# --------------------------------------------------------------------------------------------
# the proxy


class TapServer(ProxyServer):
    """ProxyServer that taps each new Connection's action executor to record write order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.by_id: dict[str, Any] = {}

    def accept(self, *args: Any, **kwargs: Any) -> Any:
        result = super().accept(*args, **kwargs)
        for conn in self.connections:
            if conn.connection_id not in self.by_id:
                self.by_id[conn.connection_id] = conn
                _tap(conn)
        return result


def _tap(conn: Any) -> None:
    writes: list[tuple[str, str]] = []
    conn._e2e_writes = writes
    original = conn.execute

    def execute(actions: list[act.Action]) -> None:
        for a in actions:
            if isinstance(a, act.SendClient):
                if conn.client is not None and not conn.client_closing:
                    writes.append(("client", a.type))
            elif (
                isinstance(a, act.SendUpstream)
                and conn.upstream is not None
                and not conn.upstream_closing
            ):
                writes.append(("upstream", a.type))
        original(actions)

    conn.execute = execute


def make_config(mock_url: str, **overrides: Any) -> Any:
    """H1: defaults except API key ``sk-test`` and the mock's URL; ``overrides`` are setting
    names of Appendix B, given through their environment variables."""
    env = {"FASTPROXY_OPENAI_API_KEY": API_KEY, "FASTPROXY_UPSTREAM_URL": mock_url}
    by_name = {s.name: s for s in SETTINGS}
    for name, value in overrides.items():
        if name == "api_key":
            env["FASTPROXY_OPENAI_API_KEY"] = value
            continue
        setting = by_name[name]  # KeyError: not a setting
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, list | tuple):
            text = ",".join(value)
        else:
            text = str(value)
        env[setting.env[0]] = text
    return load_config([], env)


Steps = Sequence[Event | Pause | Callable[[MockConnection, Event], Any]]


class Env:
    """One mock upstream + one proxy (see the module docstring).

    ``Env(loop_kind, confirming=False, mock=None, log_level=None, **settings)``: ``mock`` holds
    MockBehaviour overrides on top of H2; ``settings`` are proxy settings (Appendix B names).
    """

    def __init__(
        self,
        loop_kind: str,
        *,
        confirming: bool = False,
        mock: dict[str, Any] | None = None,
        log_level: str | None = None,
        check_errors: bool = True,
        **settings: Any,
    ) -> None:
        self.loop_kind = loop_kind
        self.behaviour = MockBehaviour.h2(confirming=confirming, **(mock or {}))
        self.settings = settings
        self.log_level = log_level or "info"
        self.check_errors = check_errors
        self.mock: MockUpstream = None  # type: ignore[assignment]
        self.server: TapServer = None  # type: ignore[assignment]
        self.config: Any = None
        self.clients: list[Client] = []
        self.logs = LogCapture()
        self.loop_errors: list[dict[str, Any]] = []
        self._saved_levels: dict[str, int] = {}
        self._tasks: list[asyncio.Task[Any]] = []

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> Env:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, ctx: self.loop_errors.append(ctx))
        level = logging.DEBUG if self.log_level == "debug" else logging.INFO
        for name in ("fastproxy", "picows", "upstream"):
            lg = logging.getLogger(name)
            self._saved_levels[name] = lg.level
            if name == "fastproxy":
                lg.setLevel(level)
        logging.getLogger().addHandler(self.logs)
        self.mock = await MockUpstream(behaviour=self.behaviour).start()
        self.config = make_config(self.mock.url, **self.settings)
        self.server = self.make_server(self.config)
        await self.server.start(host="127.0.0.1", port=0)
        return self

    def make_server(self, config: Any) -> TapServer:
        """The proxy under test (a subclass may give it metrics)."""
        return TapServer(config)

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc is None:
                self.check_invariants()
        finally:
            await self._shutdown(exc is None)

    async def _shutdown(self, raise_hook_errors: bool) -> None:
        for task in self._tasks:
            if not task.done():
                task.cancel()
        for c in self.clients:
            c.abort()
        await self.server.close()
        for conn in list(self.server.connections):
            for t in (conn.client, conn.upstream):
                if t is not None:
                    t.disconnect(False)
            if conn.upstream_task is not None and not conn.upstream_task.done():
                conn.upstream_task.cancel()
        try:
            await self.mock.stop(raise_hook_errors=raise_hook_errors)
        finally:
            logging.getLogger().removeHandler(self.logs)
            for name, lvl in self._saved_levels.items():
                logging.getLogger(name).setLevel(lvl)
            await asyncio.sleep(0)

    def spawn(self, coro: Awaitable[T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)
        return task

    # -- clients ----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, path: str = "/openai") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def connect(
        self,
        path: str = "/openai",
        headers: dict[str, str] | None = None,
        *,
        welcome: bool = True,
    ) -> Client:
        """Open a client WebSocket (and wait for ``Welcome`` unless told not to)."""
        before = set(self.server.by_id)
        transport, client = await ws_connect(
            Client,
            self.url(path),
            extra_headers=headers,
            max_frame_size=64 * 1024 * 1024,
            websocket_handshake_timeout=5,
        )
        assert isinstance(client, Client)
        client.response = transport.response  # type: ignore[attr-defined]
        self.clients.append(client)
        new = [self.server.by_id[k] for k in self.server.by_id if k not in before]
        if len(new) == 1:
            client.conn = new[0]
        if welcome:
            w = await client.wait_type("Welcome")
            client.request_id = w.get("request_id")
            if client.conn is None:
                client.conn = self.server.by_id.get(client.request_id)
        return client

    async def upstream_for(self, index: int, timeout: float = 5.0) -> MockConnection:
        return await self.mock.wait_for_connection(index, timeout)

    async def upstream_of(self, c: Client, timeout: float = 5.0) -> MockConnection:
        """The mock connection of ``c``'s upstream leg (matched by TCP port; waits for it)."""
        deadline = now() + timeout
        while True:
            upstream = getattr(c.conn, "upstream", None)
            if upstream is not None:
                sockname = upstream.underlying_transport.get_extra_info("sockname")
                for u in self.mock.connections:
                    if u.peer is not None and tuple(u.peer[:2]) == tuple(sockname[:2]):
                        c.up = u
                        return u
            if now() > deadline:
                raise TimeoutError("the client's upstream connection did not open")
            await asyncio.sleep(0.002)

    async def ready(
        self,
        settings: Event | None = None,
        path: str = "/openai",
        headers: dict[str, str] | None = None,
    ) -> Client:
        """H3 READY-setup: connect, ``Welcome``, send ``settings`` (default S0), wait for
        ``SettingsApplied``. ``client.up`` is the client's upstream connection on the mock."""
        c = await self.connect(path, headers)
        c.up = await self.upstream_of(c)
        c.send(S0 if settings is None else settings)
        await c.wait_type("SettingsApplied")
        return c

    async def quiet(self, *who: Client | MockConnection, window: float = QUIET_S) -> None:
        """H5 "nothing": assert no message reaches any of ``who`` within ``window`` seconds."""
        marks = [_count(w) for w in who]
        await asyncio.sleep(window)
        for w, mark in zip(who, marks, strict=True):
            assert _count(w) == mark, f"unexpected messages on {w!r}: {_new(w, mark)}"

    # -- mock scripting ---------------------------------------------------------------------------

    def on_response_create(self, *scripts: Steps) -> list[Event]:
        """The n-th ``response.create`` (all connections) is answered by ``scripts[n]``: events
        sent in order, ``Pause(ms)`` waits, callables ``(conn, request)`` run in place (their
        return value, if a dict, is sent). Later requests get no answer. Returns the list of
        requests seen (with their ``event_id``)."""
        seen: list[Event] = []
        queue = list(scripts)

        def hook(conn: MockConnection, event: Event) -> bool:
            seen.append(event)
            if queue:
                conn.spawn(play(conn, event, queue.pop(0)))
            return True

        self.mock.on("response.create", hook)
        return seen

    def answer_updates(
        self,
        delay_ms: float = 0.0,
        *,
        reject: dict[int, tuple[str, str]] | None = None,
        ignore: Iterable[int] = (),
    ) -> list[tuple[Event, float]]:
        """Replace the default ``session.update`` answer: the n-th update (0-based, all
        connections) is answered after ``delay_ms`` with ``session.updated``, or, when ``n`` is in
        ``reject``, with an ``error`` ``(code, message)`` naming its ``event_id``, or not at all
        when ``n`` is in ``ignore``. Returns ``(update, time the answer was sent)`` pairs as they
        are answered."""
        answered: list[tuple[Event, float]] = []
        counter = [0]
        ignored = set(ignore)

        def hook(conn: MockConnection, event: Event) -> bool:
            n = counter[0]
            counter[0] += 1
            if n in ignored:
                return True

            def answer() -> None:
                if reject and n in reject:
                    code, message = reject[n]
                    eid = event.get("event_id")
                    conn.send(upstream_error(code, message, eid, "invalid_request_error"))
                else:
                    conn.send({"type": "session.updated", "session": {"type": "realtime"}})
                answered.append((event, now()))

            if delay_ms > 0:
                conn.call_later(delay_ms, answer)
            else:
                answer()
            return True

        self.mock.on("session.update", hook)
        return answered

    # -- end-of-test checks -----------------------------------------------------------------------

    def check_invariants(self) -> None:
        for c in self.clients:
            check_client_wire(c)
        for u in self.mock.connections:
            check_upstream_wire(u)
        if self.check_errors:
            raised = [r for r in self.logs.records if r.exc_info and r.levelno >= logging.WARNING]
            assert not raised, f"proxy code raised: {[_fmt(r) for r in raised]}"
            assert not self.loop_errors, f"event loop errors: {self.loop_errors}"
            for conn in self.server.by_id.values():
                internal = conn.session.stats.violations.get("internal_error", 0)
                assert internal == 0, "Session reported an internal_error"


async def play(conn: MockConnection, request: Event, steps: Steps) -> None:
    for step in steps:
        if isinstance(step, Pause):
            await asyncio.sleep(step.ms / 1000.0)
        elif callable(step):
            result = step(conn, request)
            if isinstance(result, dict):
                conn.send(result)
            elif hasattr(result, "__await__"):
                await result
        elif not conn.send(step):
            return


def reject_request(code: str, message: str) -> Callable[[MockConnection, Event], Event]:
    """A script step answering the request with an ``error`` naming its ``event_id``."""

    def step(conn: MockConnection, request: Event) -> Event:
        return upstream_error(code, message, request.get("event_id"), "invalid_request_error")

    return step


def _count(w: Client | MockConnection) -> int:
    return len(w.messages) if isinstance(w, Client) else w.received_total


def _new(w: Client | MockConnection, mark: int) -> list[Any]:
    if isinstance(w, Client):
        return w.types(mark)
    return [r.type or r.kind for r in list(w.received)[mark - w.received.dropped :]]


def _fmt(r: logging.LogRecord) -> str:
    return f"{r.name}:{r.levelname}:{r.getMessage()}"


# --------------------------------------------------------------------------------------------
# wire-contract checks (run for every connection at the end of every test)

_EVENT_ID = re.compile(r".{1,32}", re.S)


def check_client_wire(c: Client) -> None:
    """W3/J1: every text message to the client is one JSON object with a string ``type``."""
    for m in c.messages:
        if m.kind == "text":
            assert m.obj is not None and m.type, f"P→C text message is not a typed object: {m}"


def check_upstream_wire(u: MockConnection) -> None:
    """W4/J1/J6: upstream gets only text JSON objects; every event but appends carries a unique
    ``event_id`` of at most 32 characters; appends carry none."""
    assert u.binary_received == 0, "the proxy sent a binary message upstream (W4)"
    ids: set[str] = set()
    for r in u.received:
        assert r.event is not None, f"P→U text message is not a JSON object: {r.data!r:.80}"
        etype = r.event.get("type")
        assert isinstance(etype, str)
        eid = r.event.get("event_id")
        if etype == "input_audio_buffer.append":
            assert eid is None, "append carries an event_id (A2)"
            continue
        assert isinstance(eid, str) and _EVENT_ID.fullmatch(eid), f"bad event_id {eid!r}"
        assert eid not in ids, f"duplicate event_id {eid!r}"
        ids.add(eid)


def run(coro: Awaitable[T], loop_kind: str, timeout: float = TEST_TIMEOUT_S) -> T:
    """Run ``coro`` to completion in a fresh event loop of ``loop_kind``."""
    if loop_kind == "uvloop":
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    else:
        factory = asyncio.new_event_loop

    async def main() -> T:
        return await asyncio.wait_for(coro, timeout)

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())
