"""The client-facing server: upgrade routing, admission checks, health routes, drain.

Every HTTP request on the port arrives here first (picows calls the listener factory before it
validates the upgrade). ``ProxyServer.route`` answers the plain routes (``/livez``,
``/readyz``, ``/metrics``), then applies the checks of PROTOCOL.md §3.1 in order — path and
upgrade (404), draining (503), Origin (403, §11.2), authentication (401, §11.1), session limits
(503 / 429, §11.3) — and only then creates a Connection. Per-address limits need the TCP peer,
which picows does not hand to the factory, so the server builds its picows protocol objects
itself (``_PeerAwareProtocol``) and passes each one's peer address to its own factory call.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import os
import signal
import ssl
import uuid
from collections import Counter
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from picows import (
    WSAutoPingStrategy,
    WSListener,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)
from picows.picows import WSProtocol  # type: ignore[attr-defined]

from fastproxy.logs import trace_id_from_query
from fastproxy.net.connection import Connection
from fastproxy.protocol.stats import SessionStats

if TYPE_CHECKING:
    from fastproxy.config import Config
    from fastproxy.metrics import Metrics
    from fastproxy.net.supervisor import WorkerContext

log = logging.getLogger("fastproxy.server")
# Initial read buffer per client connection: picows' minimum (it allocates max(this, 2048)).
# 20 ms frames and control messages fit; picows doubles it for a bigger message and keeps it, so
# only idle sessions stay this small (RSS per idle session, see README "Performance").
CLIENT_READ_BUFFER = 2 * 1024
HANDSHAKE_TIMEOUT_S = 10.0
LISTEN_BACKLOG = 1024  # asyncio's default (100) drops SYNs when hundreds of clients connect at once

COUNTER_FLUSH_S = 5.0  # relay C counters -> Prometheus
REFUSAL_OUTCOMES = {
    401: "refused_auth",
    403: "refused_auth",
    429: "refused_limit",
    503: "refused_limit",
}


class _PeerAwareProtocol(WSProtocol):  # type: ignore[misc]
    """picows' server protocol, remembering the TCP peer for the listener factory."""

    peer: str = ""

    def connection_made(self, transport: Any) -> None:
        peername = transport.get_extra_info("peername")
        self.peer = str(peername[0]) if peername else ""
        super().connection_made(transport)


def _text_response(status: int, body: str, headers: dict[str, str] | None = None) -> Any:
    extra = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
    if status == 200:
        response = WSUpgradeResponse.create_ok_response(body.encode(), extra)
    else:
        response = WSUpgradeResponse.create_error_response(status, body.encode(), extra)
    return WSUpgradeResponseWithListener(response, None)


class ProxyServer:
    """Accepts client WebSockets and owns the set of live connections."""

    def __init__(
        self,
        config: Config,
        metrics: Metrics | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.ssl_context = ssl_context  # for a wss:// upstream; None: the system's CA store
        self._flush_task: asyncio.Task[None] | None = None
        self.metrics_server: asyncio.Server | None = None
        self.connections: set[Connection] = set()
        self.session_options = config.session_options()  # one per process, shared (immutable)
        self.per_address: Counter[str] = Counter()
        self.draining = False
        self.server: asyncio.Server | None = None
        self.idle = asyncio.Event()
        self.idle.set()
        self._tokens = [t.encode() for t in config.auth_tokens]
        self._origins = {o.lower() for o in config.allowed_origins}
        self._any_origin = not self._origins or "*" in self._origins
        picows_logger = logging.getLogger("picows")
        if not log.isEnabledFor(logging.DEBUG):
            picows_logger.setLevel(logging.WARNING)  # picows logs every accept at info
        # An adapter, not a Logger: picows then logs through it as is, instead of building a
        # child Logger per accepted socket (CPU per setup, ~1 KiB per session).
        self._picows_logger = logging.LoggerAdapter(logging.getLogger("picows.server"))

    # -- listening ---------------------------------------------------------------------------

    async def start(self, host: str | None = None, port: int | None = None, **kwargs: Any) -> None:
        """Listen on ``host``:``port`` (default: the config's) and on ``metrics_port`` if set.

        ``kwargs`` go to ``loop.create_server`` for the proxy port; ``reuse_port=True`` (each
        worker of ``--workers N`` binds its own socket on the same port and the kernel spreads
        new connections over them) applies to the metrics port too.
        """
        loop = asyncio.get_running_loop()
        host = host if host is not None else self.config.host
        kwargs.setdefault("backlog", LISTEN_BACKLOG)
        self.server = await loop.create_server(
            self._protocol_factory,
            host=host,
            port=port if port is not None else self.config.port,
            **kwargs,
        )
        if self.metrics is not None:
            self._flush_task = loop.create_task(self._flush_counters())
        if self.config.metrics_port is not None:  # /metrics, /livez, /readyz only
            self.metrics_server = await loop.create_server(
                lambda: self._protocol_factory(plain_only=True),
                host=host,
                port=self.config.metrics_port,
                reuse_port=kwargs.get("reuse_port"),
            )

    async def _flush_counters(self) -> None:
        while True:
            await asyncio.sleep(COUNTER_FLUSH_S)
            self._flush_once()  # a helper: no loop variable outlives the flush across the sleep

    def _flush_once(self) -> None:
        for connection in list(self.connections):
            connection.flush_counters()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def _protocol_factory(self, plain_only: bool = False) -> WSProtocol:
        config = self.config
        holder: list[_PeerAwareProtocol] = []

        def listener_factory(request: WSUpgradeRequest) -> Any:
            if plain_only:
                return self.plain_route(request, urlsplit(request.path.decode("latin-1")).path)
            return self.route(request, holder[0].peer)

        ping = config.ping_interval_ms > 0
        ping_idle_s, ping_reply_s = config.ping_timeouts_s
        protocol = _PeerAwareProtocol(
            None,
            None,
            False,
            listener_factory,
            self._picows_logger,
            True,  # disconnect_on_exception
            HANDSHAKE_TIMEOUT_S,
            ping,
            ping_idle_s,
            ping_reply_s,
            WSAutoPingStrategy.PING_WHEN_IDLE,
            True,  # enable_auto_pong
            2 * config.max_client_message_bytes,  # the relay enforces the limit itself (W7)
            None,
            CLIENT_READ_BUFFER,
        )
        holder.append(protocol)
        return protocol

    async def close(self) -> None:
        if self._flush_task is not None:
            self._flush_task.cancel()
            self._flush_task = None
        for server in (self.server, self.metrics_server):
            if server is not None:
                server.close()
                await server.wait_closed()

    # -- routing (§3.1) ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return not self.draining and len(self.connections) < self.config.max_sessions

    def route(self, request: WSUpgradeRequest, peer: str) -> Any:
        response = self.admit(request, peer)
        if self.metrics is not None and isinstance(response, WSUpgradeResponseWithListener):
            outcome = REFUSAL_OUTCOMES.get(int(response.response.status))
            if outcome is not None:
                self.metrics.sessions.labels(outcome).inc()
        return response

    def admit(self, request: WSUpgradeRequest, peer: str) -> Any:
        raw_path = request.path.decode("latin-1")
        parts = urlsplit(raw_path)
        path = parts.path
        if path not in self.config.paths:
            return self.plain_route(request, path)
        headers = request.headers
        upgrade = "websocket" in headers.get("Upgrade", "").lower()
        if request.method != b"GET" or not upgrade:
            return _text_response(404, "not_found")
        if self.draining:
            return _text_response(503, "draining")
        origin = headers.get("Origin")
        if origin is not None and not self._any_origin and origin.lower() not in self._origins:
            return _text_response(403, "origin_not_allowed")
        offered = [p.strip() for p in headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if self.config.auth == "token" and not self.authenticated(headers, offered):
            return _text_response(401, "unauthorized")
        if len(self.connections) >= self.config.max_sessions:
            return _text_response(503, "too_many_sessions")
        limit = self.config.max_sessions_per_address
        if limit and self.per_address[peer] >= limit:
            return _text_response(429, "too_many_sessions_from_address")
        return self.accept(parts.query, peer, offered[0] == "token")

    def plain_route(self, request: WSUpgradeRequest, path: str) -> Any:
        if request.method == b"GET":
            if path == "/livez":
                return _text_response(200, "ok")
            if path == "/readyz":
                return (
                    _text_response(200, "ready") if self.ready else _text_response(503, "not_ready")
                )
            if path == "/metrics" and self.metrics is not None:
                body, content_type = self.metrics.render()
                response = WSUpgradeResponse.create_ok_response(
                    body, {"Content-Type": content_type}
                )
                return WSUpgradeResponseWithListener(response, None)
        return _text_response(404, "not_found")

    def authenticated(self, headers: Any, offered: list[str]) -> bool:
        """§11.1: ``Authorization: Token|Bearer <t>`` or ``Sec-WebSocket-Protocol: token, <t>``."""
        candidates: list[bytes] = []
        scheme, _, value = headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            candidates.append(value.strip().encode())
        if len(offered) >= 2 and offered[0] == "token" and offered[1]:
            candidates.append(offered[1].encode())
        ok = False
        for candidate in candidates:
            for token in self._tokens:  # constant time, and no early exit over the tokens
                ok |= hmac.compare_digest(candidate, token)
        return ok

    def accept(self, query: str, peer: str, select_token_protocol: bool) -> Any:
        connection_id = str(uuid.uuid4())
        connection = Connection(
            self.config,
            connection_id,
            trace_id_from_query(query, connection_id),
            peer,
            self.metrics.stats() if self.metrics is not None else SessionStats(),
            self.connection_finished,
            ssl_context=self.ssl_context,
            metrics=self.metrics,
            options=self.session_options,
        )
        self.connections.add(connection)
        if self.metrics is not None:
            self.metrics.session_accepted()
        self.per_address[peer] += 1
        self.idle.clear()
        listener: WSListener = connection.relay.client_listener
        if select_token_protocol:
            response = WSUpgradeResponse.create_101_response({"Sec-WebSocket-Protocol": "token"})
            return WSUpgradeResponseWithListener(response, listener)
        return listener

    def connection_finished(self, connection: Connection) -> None:
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        self.per_address[connection.peer] -= 1
        if self.per_address[connection.peer] <= 0:
            del self.per_address[connection.peer]
        if not self.connections:
            self.idle.set()

    # -- drain (§3.6) ---------------------------------------------------------------------------

    async def drain(self) -> None:
        """Refuse new upgrades; let live pairs run until ``drain_timeout_ms``; then 1001."""
        self.draining = True
        try:
            await asyncio.wait_for(self.idle.wait(), self.config.drain_timeout_ms / 1000.0)
        except TimeoutError:
            for connection in list(self.connections):
                connection.drain_deadline()
            try:
                await asyncio.wait_for(self.idle.wait(), 3.0)
            except TimeoutError:
                log.warning("%d connections did not close after the drain", len(self.connections))


async def serve(
    config: Config, stop: asyncio.Event | None = None, worker: WorkerContext | None = None
) -> int:
    """Run the proxy until SIGTERM (graceful drain) or SIGINT (immediate).

    ``worker``: this process is one worker of ``--workers N`` (fastproxy.net.supervisor). Then
    the supervisor runs the built-in mock upstream (``config`` already points at it) and owns
    the metrics directory; the listening socket is bound with SO_REUSEPORT beside the other
    workers'; the worker tells the supervisor when it listens and stops at once if the
    supervisor goes away; and a repeated SIGTERM does not cut the drain short (signals sent to
    the whole process group reach a worker twice: the supervisor sends SIGINT for "at once").
    """
    from fastproxy import audio
    from fastproxy.metrics import Metrics
    from fastproxy.net.mock_runtime import maybe_start_mock_upstream

    mock = await maybe_start_mock_upstream(config) if worker is None else None
    if mock is not None:
        config = mock.config
    metrics = None
    if config.metrics:
        metrics = Metrics(
            implementation=audio.IMPLEMENTATION,
            worker=str(worker.index) if worker is not None else "0",
            multiprocess_dir=worker.metrics_dir if worker is not None else None,
        )
    server = ProxyServer(config, metrics)
    await server.start(reuse_port=True if worker is not None else None)
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    if worker is None:
        log.info(
            "fastproxy listening on %s:%d (paths %s)",
            config.host,
            server.port,
            ",".join(config.paths),
            extra={"event": "listening"},
        )
    draining: list[asyncio.Task[None]] = []

    def on_sigterm() -> None:
        if draining:
            if worker is None:
                stop.set()  # a second SIGTERM ends at once
            return
        log.info("SIGTERM: draining for up to %d ms", config.drain_timeout_ms)
        task = loop.create_task(server.drain())
        task.add_done_callback(lambda _: stop.set())
        draining.append(task)

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if worker is not None:
        worker.listening(server.port, stop)  # after the handlers: signals may follow at once
    try:
        await stop.wait()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        loop.remove_signal_handler(signal.SIGINT)
        await server.close()
        for connection in list(server.connections):
            connection.drain_deadline()
        if mock is not None:
            await mock.stop()
    return 0


GC_THRESHOLDS = (50_000, 20, 10)
"""A session setup allocates a few hundred container objects; with CPython's default gen-0
threshold (700) the cyclic collector ran every few setups and cost ~10 % of the proxy's CPU
per setup (fastproxy bench --only setup: 760 -> 660 µs). The audio path allocates almost
nothing, so collections stay rare while streaming."""


def tune_gc() -> None:
    """For a proxy process (not for library use): move everything imported so far out of the
    collector's sight (``gc.freeze``) and collect young objects in larger batches."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_server(config: Config) -> int:
    """The ``fastproxy serve`` entry point: the supervisor with ``--workers N`` > 1, else one
    process running ``serve`` on uvloop."""
    if config.workers > 1:
        from fastproxy.net.supervisor import run_supervisor

        return run_supervisor(config)
    import uvloop

    # Prometheus multiprocess mode is for --workers > 1 only: a PROMETHEUS_MULTIPROC_DIR left in
    # the environment (e.g. by a unit file shared with multi-worker instances) must not switch
    # this single process's metrics to files in a directory nobody wipes.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.pop("prometheus_multiproc_dir", None)
    tune_gc()
    return uvloop.run(serve(config))


__all__ = ["HTTPStatus", "ProxyServer", "run_server", "serve"]
