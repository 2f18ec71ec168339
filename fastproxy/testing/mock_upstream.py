"""The mock OpenAI Realtime upstream: a real picows WebSocket server on loopback.

There is no OpenAI key in this project, so tests, benchmarks and newcomers point the proxy's
``upstream_url`` at this server. By default it behaves like PROTOCOL.md §13.1 H2 plus a
"confirming" mock with a realistic default reply (see :class:`MockBehaviour`); every behaviour
of §13 is scriptable per test::

    async with MockUpstream(confirm_items=False) as mock:
        ...  # start the proxy with upstream_url=mock.url and a client
        conn = await mock.wait_for_connection()
        update = await conn.wait_for_event("session.update")
        conn.reject(update, "invalid_value", "Invalid model")      # P-33

Reactions are scripted with hooks (``mock.on("response.create")``, ``mock.on_event``,
``conn.on_event``), queued reply specs (``replies=[FunctionCallReply("get_time"),
AudioReply("It is noon.")]``) or direct sends (``conn.send(events.response_created("resp_1"))``,
``conn.schedule(300, …)``, ``conn.close(1011, "boom")``, ``conn.reset()``). Faults for the
hardening tests: ``conn.reset()`` (TCP RST mid-anything), ``conn.stop_reading()`` (an upstream
that hangs: its socket buffers fill while the proxy writes) and
``MockBehaviour(withhold_events={"response.done"})`` (an upstream that never ends a response).

The handshake options need a hook picows' server does not offer (holding the upgrade request
before the listener factory runs), so the server is built from picows' ``WSProtocol`` directly:
connections with a handshake delay get a subclass that parks incoming bytes until the delay
ends; all others use picows' protocol unchanged. ``picows`` is pinned exactly (``==2.3.1``),
which is what makes relying on ``WSProtocol``'s constructor acceptable.

Run it standalone with ``python -m fastproxy.testing --port 8765`` (``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import math
import signal
import ssl as _ssl
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar, overload

import picows.picows as _picows_impl
from picows import (
    WSAutoPingStrategy,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)

from . import events
from .behaviour import (
    BinaryHook,
    ConfirmItem,
    ConnHook,
    EventHook,
    IgnoreItem,
    ItemPolicy,
    MockBehaviour,
    RejectItem,
    confirm_after,
    confirm_only,
)
from .connection import MockConnection, Received
from .scripts import (
    AudioReply,
    CustomReply,
    ErrorReply,
    FunctionCallReply,
    NoReply,
    Pause,
    ReplyContext,
    ReplySpec,
    TextReply,
)
from .waiters import Waiters

__all__ = [
    "AudioReply",
    "BinaryHook",
    "ConfirmItem",
    "ConnHook",
    "CustomReply",
    "ErrorReply",
    "EventHook",
    "FunctionCallReply",
    "IgnoreItem",
    "ItemPolicy",
    "MockBehaviour",
    "MockConnection",
    "MockHookError",
    "MockUpstream",
    "NoReply",
    "Pause",
    "Received",
    "RejectItem",
    "ReplyContext",
    "ReplySpec",
    "TextReply",
    "confirm_after",
    "confirm_only",
    "events",
    "main",
    "run",
    "run_mock_upstream",
    "serve_mock_upstream",
]

T = TypeVar("T")
H = TypeVar("H", bound=EventHook)
log = logging.getLogger("fastproxy.testing.mock_upstream")
# picows logs every accept and disconnect at info on the logger it is given: keep the mock's
# per-connection records out of a proxy's info log (they stay available at debug).
_picows_log = logging.getLogger("fastproxy.testing.mock_upstream.picows")
_picows_log.setLevel(logging.WARNING)

_WSProtocol: Any = getattr(_picows_impl, "WSProtocol")  # noqa: B009 - not in picows' stub
_READ_BUFFER_INIT = 64 * 1024
_HELD_MAX = 64 * 1024  # bytes parked while a handshake is held (an upgrade request is < 16 KiB)
_MAX_KEPT_CONNECTIONS = 10_000


class MockHookError(RuntimeError):
    """A test hook raised; raised again by :meth:`MockUpstream.stop` so it is not lost."""


class _Protocol(_WSProtocol):  # type: ignore[misc]
    """picows' protocol plus registration with the mock (for stop() and counters)."""

    _mock: MockUpstream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._mock._protocols.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._mock._protocols.discard(self)
        self._mock.tcp_closed += 1
        super().connection_lost(exc)
        self._mock._notify()


class _HeldProtocol(_Protocol):
    """Parks received bytes for ``_hold_s`` seconds (``inf``: forever) before picows sees them,
    which delays (or suppresses) the answer to the upgrade request."""

    _hold_s: float

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._held = bytearray()
        self._scratch = bytearray(16 * 1024)
        self._holding = True
        self._timer: asyncio.TimerHandle | None = None
        self._raw = transport
        super().connection_made(transport)
        self._mock.pending_upgrades += 1
        if math.isfinite(self._hold_s):
            self._timer = asyncio.get_running_loop().call_later(self._hold_s, self._release)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._holding:
            return memoryview(self._scratch)
        return super().get_buffer(sizehint)  # type: ignore[no-any-return]

    def buffer_updated(self, nbytes: int) -> None:
        if not self._holding:
            super().buffer_updated(nbytes)
            return
        self._held += memoryview(self._scratch)[:nbytes]
        if len(self._held) >= _HELD_MAX:
            self._raw.pause_reading()  # type: ignore[attr-defined]

    def _release(self) -> None:
        self._timer = None
        self._holding = False
        self._mock.pending_upgrades -= 1
        data = bytes(self._held)
        self._held.clear()
        if len(data) >= _HELD_MAX:
            self._raw.resume_reading()  # type: ignore[attr-defined]
        view = memoryview(data)
        while view and not self._raw.is_closing():
            buf = super().get_buffer(-1)
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            view = view[n:]
            super().buffer_updated(n)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._holding:
            self._holding = False
            self._mock.pending_upgrades -= 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MockUpstream:
    """The mock OpenAI Realtime server (see the module docstring).

    ``MockUpstream(behaviour=None, *, host="127.0.0.1", port=0, **options)``: ``options`` are
    :class:`MockBehaviour` fields overriding ``behaviour`` (or the defaults); port 0 picks a free
    port (see :attr:`url` once started). Use as an async context manager, or ``await start()``
    / ``await stop()``.

    Counters: ``tcp_accepted``, ``tcp_closed``, ``pending_upgrades`` (TCP connections whose
    upgrade is being held), ``refused``, ``opened`` / ``closed`` (WebSocket connections).
    ``upgrade_requests`` lists ``(path, headers)`` of every upgrade request, refused ones too.
    """

    def __init__(
        self,
        behaviour: MockBehaviour | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_remote: bool = False,
        ssl: _ssl.SSLContext | None = None,
        **options: Any,
    ) -> None:
        if not allow_remote and not _is_loopback(host):
            raise ValueError(f"the mock upstream binds loopback only, not {host!r}")
        base = behaviour.copy() if behaviour is not None else MockBehaviour()
        self.behaviour = base if not options else _replace(base, options)
        self.behaviour.validate()
        self.host = host
        self.ssl = ssl  # a server context: serve wss:// (TLS tests of the upstream leg)
        self._requested_port = port
        self.port = port
        self.on_event: EventHook | None = None
        self.on_connect: ConnHook | None = None
        self.on_disconnect: ConnHook | None = None
        self.on_binary: BinaryHook | None = None
        self.connections: list[MockConnection] = []
        self.upgrade_requests: deque[tuple[str, dict[str, str]]] = deque(
            maxlen=_MAX_KEPT_CONNECTIONS
        )
        self.hook_errors: list[BaseException] = []
        self.tcp_accepted = 0
        self.tcp_closed = 0
        self.pending_upgrades = 0
        self.refused = 0
        self.opened = 0
        self.closed = 0
        self._handlers: dict[str, list[EventHook]] = {}
        self._protocols: set[_Protocol] = set()
        self._waiters: Waiters[MockUpstream] = Waiters(self)
        self._server: asyncio.AbstractServer | None = None
        self._accepted_total = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>/v1/realtime?model=gpt-realtime`` (``wss://`` with TLS)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "wss" if self.ssl is not None else "ws"
        return f"{scheme}://{host}:{self.port}/v1/realtime?model=gpt-realtime"

    @property
    def started(self) -> bool:
        return self._server is not None

    async def start(self) -> MockUpstream:
        if self._server is not None:
            return self
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol_factory, self.host, self._requested_port, backlog=1024, ssl=self.ssl
        )
        sockets = self._server.sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("mock upstream listening on %s", self.url)
        return self

    async def stop(self, *, raise_hook_errors: bool = True, close_timeout: float = 0.5) -> None:
        """Close every WebSocket connection with 1001 (waiting up to ``close_timeout`` for the
        clients' close frames, then dropping what is left, held upgrades included), stop
        listening, and cancel and await every task the mock scheduled. Raises
        :class:`MockHookError` if a hook raised (unless ``raise_hook_errors`` is False)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn.close(1001, "mock upstream stopping")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + close_timeout
        while loop.time() < deadline and any(
            c.transport is not None and not c.closed for c in self.connections
        ):
            await asyncio.sleep(0.01)
        tasks: list[asyncio.Task[Any]] = []
        for conn in list(self.connections):
            tasks += conn._tasks
            conn._shutdown()
        for proto in list(self._protocols):
            transport = getattr(proto, "transport", None)
            if transport is not None:
                transport.disconnect(False)
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        for _ in range(100):
            if not self._protocols:
                break
            await asyncio.sleep(0.01)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._waiters.cancel_all()
        if raise_hook_errors and self.hook_errors:
            first = self.hook_errors[0]
            raise MockHookError(
                f"{len(self.hook_errors)} mock hook error(s); first: {first!r}"
            ) from first

    async def __aenter__(self) -> MockUpstream:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop(raise_hook_errors=exc is None)

    # ------------------------------------------------------------------ scripting

    @overload
    def on(self, event_type: str) -> Callable[[H], H]: ...

    @overload
    def on(self, event_type: str, handler: H) -> H: ...

    def on(self, event_type: str, handler: H | None = None) -> H | Callable[[H], H]:
        """Register ``handler(conn, event) -> handled`` for client events of ``event_type``
        (all connections). Usable as a decorator: ``@mock.on("response.create")``."""

        def register(fn: H) -> H:
            self._handlers.setdefault(event_type, []).append(fn)
            return fn

        if handler is not None:
            return register(handler)
        return register

    def off(self, event_type: str) -> None:
        """Remove every handler registered for ``event_type``."""
        self._handlers.pop(event_type, None)

    @property
    def active(self) -> int:
        """WebSocket connections currently open."""
        return self.opened - self.closed

    def connection(self, index: int = -1) -> MockConnection:
        return self.connections[index]

    async def wait_until(
        self, predicate: Callable[[MockUpstream], T | None], timeout: float = 5.0
    ) -> T:
        """Wait until ``predicate(mock)`` is truthy (re-checked on every message, connect and
        close) and return its value."""
        return await self._waiters.wait(
            predicate,
            timeout,
            lambda: (
                f"mock upstream (tcp_accepted={self.tcp_accepted}, opened={self.opened}, "
                f"closed={self.closed}, refused={self.refused})"
            ),
        )

    async def wait_for(
        self, predicate: Callable[[MockConnection], Any], timeout: float = 5.0
    ) -> MockConnection:
        """Wait until some connection satisfies ``predicate(conn)`` and return it."""

        def check(mock: MockUpstream) -> MockConnection | None:
            for conn in mock.connections:
                if predicate(conn):
                    return conn
            return None

        return await self.wait_until(check, timeout)

    async def wait_for_connection(self, index: int = 0, timeout: float = 5.0) -> MockConnection:
        """The ``index``-th (0-based) WebSocket connection, once its upgrade is answered."""

        def check(mock: MockUpstream) -> MockConnection | None:
            for conn in mock.connections:
                if conn.index == index and conn.transport is not None:
                    return conn
            return None

        return await self.wait_until(check, timeout)

    def _notify(self) -> None:
        self._waiters.notify()

    # ------------------------------------------------------------------ server plumbing

    def _protocol_factory(self) -> _Protocol:
        b = self.behaviour
        self.tcp_accepted += 1
        hold = math.inf if b.never_answer_upgrade else b.handshake_delay_ms / 1000.0
        cls = _HeldProtocol if hold > 0 else _Protocol
        handshake_timeout = None if math.isinf(hold) else 10.0 + hold
        proto: _Protocol = cls(
            None,  # host:port (client side only)
            None,  # path (client side only)
            False,  # is_client_side
            self._listener_factory,
            _picows_log,
            True,  # disconnect_on_exception
            handshake_timeout,
            False,  # enable_auto_ping
            20.0,
            20.0,
            WSAutoPingStrategy.PING_WHEN_IDLE,
            True,  # enable_auto_pong
            b.max_message_bytes,
            None,  # extra_headers (client side only)
            _READ_BUFFER_INIT,
        )
        proto._mock = self
        if isinstance(proto, _HeldProtocol):
            proto._hold_s = hold
        return proto

    def _listener_factory(self, request: WSUpgradeRequest) -> Any:
        b = self.behaviour
        target = request.path.decode("latin-1")
        self.upgrade_requests.append((target, dict(request.headers)))
        if b.refuse_status is not None:
            self.refused += 1
            self._notify()
            response = WSUpgradeResponse.create_error_response(
                b.refuse_status, b.refuse_body, {"Content-Type": "application/json"}
            )
            return WSUpgradeResponseWithListener(response, None)
        conn = MockConnection(self, self._accepted_total, b.copy(), request)
        self._accepted_total += 1
        self.connections.append(conn)
        return conn

    def _connected(self, conn: MockConnection) -> None:
        self.opened += 1
        if self.on_connect is not None:
            conn._call_hook(self.on_connect)

    def _disconnected(self, conn: MockConnection) -> None:
        if conn.connected_at is not None:
            self.closed += 1
        if self.on_disconnect is not None:
            conn._call_hook(self.on_disconnect)
        if len(self.connections) > _MAX_KEPT_CONNECTIONS:
            self.connections = [c for c in self.connections if not c.closed][
                -_MAX_KEPT_CONNECTIONS:
            ]

    def _hook_error(self, conn: MockConnection, exc: BaseException | None) -> None:
        if exc is None:
            return
        log.error("mock upstream hook raised on connection #%d", conn.index, exc_info=exc)
        self.hook_errors.append(exc)
        self._notify()


def _replace(base: MockBehaviour, options: dict[str, Any]) -> MockBehaviour:
    fields = set(MockBehaviour.__dataclass_fields__)
    unknown = sorted(set(options) - fields)
    if unknown:
        raise TypeError(f"unknown mock upstream option(s): {', '.join(unknown)}")
    out = base.copy()
    for key, value in options.items():
        setattr(out, key, list(value) if key == "replies" else value)
    return out


# ---------------------------------------------------------------------- standalone use


async def serve_mock_upstream(
    host: str = "127.0.0.1", port: int = 0, **behaviour: Any
) -> MockUpstream:
    """Start a mock upstream (``behaviour``: :class:`MockBehaviour` fields) and return it; the
    caller stops it with ``await mock.stop()``."""
    return await MockUpstream(host=host, port=port, **behaviour).start()


async def run_mock_upstream(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_ready: Callable[[MockUpstream], None] | None = None,
    stop: Awaitable[Any] | None = None,
    **behaviour: Any,
) -> None:
    """Serve until cancelled (or until ``stop`` completes); ``on_ready(mock)`` runs once
    listening. The coroutine a CLI's ``mock-upstream`` command runs."""
    mock = await serve_mock_upstream(host, port, **behaviour)
    try:
        if on_ready is not None:
            on_ready(mock)
        if stop is None:
            await asyncio.Event().wait()
        else:
            await stop
    finally:
        await mock.stop(raise_hook_errors=False)


MODES: dict[str, dict[str, Any]] = {
    "default": {},
    "echo": {"echo": True},
    "vad": {"vad": True},
}
"""``fastproxy mock-upstream --mode``: the behaviour presets a standalone server offers."""


def run(host: str = "127.0.0.1", port: int = 9000, mode: str = "default", **behaviour: Any) -> int:
    """Serve on ``host:port`` until SIGINT / SIGTERM, on uvloop; returns the exit status.

    The entry point of ``fastproxy mock-upstream`` (and ``python -m fastproxy.testing``). It is
    blocking on purpose (it owns its event loop, so load benchmarks get uvloop); from inside a
    running loop use :func:`run_mock_upstream` or :func:`serve_mock_upstream` instead.
    ``mode`` is a key of :data:`MODES`; ``behaviour`` adds :class:`MockBehaviour` fields.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mock upstream mode {mode!r} (one of {', '.join(MODES)})")
    # A long-running server keeps only recent history per connection.
    options: dict[str, Any] = {"max_recorded": 1000, **MODES[mode], **behaviour}
    MockUpstream(host=host, port=port, **options)  # validate before starting a loop

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stopping: asyncio.Future[None] = loop.create_future()

        def request_stop() -> None:
            if not stopping.done():
                stopping.set_result(None)

        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, request_stop)

        label = "echo" if options.get("echo") else "vad" if options.get("vad") else mode

        def ready(mock: MockUpstream) -> None:
            log.warning("mock upstream (%s mode) listening on %s", label, mock.url)

        try:
            await run_mock_upstream(host, port, on_ready=ready, stop=stopping, **options)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(serve())
    else:
        uvloop.run(serve())
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The mock's command-line options (``python -m fastproxy.testing``)."""
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=9000, help="TCP port (0: any free port)")
    parser.add_argument("--mode", choices=tuple(MODES), default="default")
    parser.add_argument("--echo", action="store_true", help="echo appends as audio deltas")
    parser.add_argument("--vad", action="store_true", help="simulate server VAD on appends")
    parser.add_argument("--no-reply", action="store_true", help="never answer response.create")
    parser.add_argument("--no-confirm", action="store_true", help="never confirm items")
    parser.add_argument("--reply-text", default=None, help="transcript of every default reply")
    parser.add_argument("--reply-audio-ms", type=int, default=600)
    parser.add_argument("--pacing-ms", type=float, default=0.0, help="pause between deltas")
    parser.add_argument("--handshake-delay-ms", type=float, default=0.0)
    parser.add_argument("--refuse-status", type=int, default=None, help="e.g. 401")
    parser.add_argument("--never-answer-upgrade", action="store_true")
    parser.add_argument("--session-updated-delay-ms", type=float, default=0.0)
    parser.add_argument("--never-answer-session-update", action="store_true")
    parser.add_argument("--max-message-bytes", type=int, default=16 * 1024 * 1024)


def behaviour_from_args(ns: argparse.Namespace) -> dict[str, Any]:
    """:class:`MockBehaviour` options from parsed :func:`add_arguments` options (``--mode``
    excluded)."""
    return {
        "echo": ns.echo,
        "vad": ns.vad,
        "reply": not ns.no_reply,
        "confirm_items": not ns.no_confirm,
        "reply_text": ns.reply_text,
        "reply_audio_ms": ns.reply_audio_ms,
        "pacing_ms": ns.pacing_ms,
        "handshake_delay_ms": ns.handshake_delay_ms,
        "refuse_status": ns.refuse_status,
        "never_answer_upgrade": ns.never_answer_upgrade,
        "session_updated_delay_ms": ns.session_updated_delay_ms,
        "answer_session_update": not ns.never_answer_session_update,
        "max_message_bytes": ns.max_message_bytes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fastproxy.testing``: serve until SIGINT / SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m fastproxy.testing",
        description="Mock OpenAI Realtime upstream (loopback WebSocket server) for fastproxy.",
    )
    add_arguments(parser)
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    options = behaviour_from_args(ns)
    options.update(MODES[ns.mode])
    return run(ns.host, ns.port, **options)


if __name__ == "__main__":
    sys.exit(main())
