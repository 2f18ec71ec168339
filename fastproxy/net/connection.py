"""One client connection: its Session, its relay, both transports, and its timers.

The connection is the only place where the Session's actions meet the network. It feeds every
fact from the relay (frames the fast path declined, opens, closes, overflows) to
``Session.handle`` and executes the returned actions in order, which is how the ordering rules
of PROTOCOL.md survive the split between the compiled audio path and the Python control path.
It guarantees that the pair lives and dies together (§3.6): once both legs are gone it cancels
its timers, releases its buffers and tells the server.

A close handshake the peer does not finish within 2 s ends with the TCP connection *dropped*
(aborted): a graceful close would wait for a peer that stopped reading to drain the send buffer,
which may never happen. A leg that stays above its write high-water mark (the relay then stops
reading the other leg) for the stall timeout — ``min(ping_interval_ms, ping_timeout_ms)``, the
time the ping gives a silent peer — is treated as over its send-buffer limit (§3.4): a peer that
accepts no bytes for that long is as dead as one that answers no ping, and the stall must end
before the ping of the *healthy* leg, which the proxy no longer reads, times out instead.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from picows import WSCloseCode, WSMsgType, WSTransport

from fastproxy.net import upstream as upstream_connect
from fastproxy.net.relay import Relay
from fastproxy.net.relay_py import send_to_client
from fastproxy.protocol import actions as act
from fastproxy.protocol import events as ev
from fastproxy.protocol.session import Session
from fastproxy.protocol.stats import SessionStats

if TYPE_CHECKING:
    from fastproxy.config import Config
    from fastproxy.metrics import Metrics, RelayCounters
    from fastproxy.protocol.options import SessionOptions

log = logging.getLogger("fastproxy.connection")


class _TypeOnly(msgspec.Struct):
    type: str = "?"


_type_decoder = msgspec.json.Decoder(_TypeOnly)


def message_type(data: bytes) -> str:
    """The JSON ``type`` of a message, for debug logs only (never its content, §12.2)."""
    try:
        return _type_decoder.decode(data).type
    except (ValueError, RecursionError):  # msgspec errors, bad UTF-8, nesting past the limit
        return "(invalid)"


CLOSE_HANDSHAKE_TIMEOUT = 2.0  # §3.6
CLOSE_OUTCOMES = {  # the client close reason the Session chose -> session outcome
    "normal": "ok",
    "going_away": "ok",
    "upstream_unavailable": "upstream_failed",
    "upstream_closed": "upstream_failed",
}


class Connection:
    """See the module docstring. Created by the server when an upgrade is accepted."""

    def __init__(
        self,
        config: Config,
        connection_id: str,
        trace_id: str,
        peer: str,
        stats: SessionStats,
        on_finished: Callable[[Connection], None],
        *,
        options: SessionOptions,
        ssl_context: ssl.SSLContext | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.connection_id = connection_id
        self.trace_id = trace_id
        self.peer = peer
        self.loop = asyncio.get_running_loop()
        self.session = Session(options, connection_id=connection_id, stats=stats)
        self.relay = Relay(
            self,
            config.max_client_message_bytes,
            config.max_upstream_message_bytes,
            config.send_buffer_max_bytes,
        )
        self.timers: dict[str, asyncio.TimerHandle] = {}  # the Session's timers
        self.net_timers: dict[str, asyncio.TimerHandle] = {}  # close-handshake drops, stalls
        ping_ms = config.ping_interval_ms
        stall_ms = min(ping_ms, config.ping_timeout_ms) if ping_ms > 0 else config.ping_timeout_ms
        self.stall_timeout_s = stall_ms / 1000.0
        self.client: WSTransport | None = None
        self.upstream: WSTransport | None = None
        self.upstream_task: asyncio.Task[None] | None = None
        self.client_gone = False
        self.upstream_gone = False
        self.client_closing = False
        self.upstream_closing = False
        self.abandon_upstream = False
        self.finished = False
        self.on_finished = on_finished
        self.ssl_context = ssl_context
        self.started_at = self.loop.time()
        self.outcome: str | None = None  # fastproxy_sessions_total{outcome}
        self.metrics = metrics
        self.counters: RelayCounters | None = None
        if metrics is not None:
            from fastproxy.metrics import RelayCounters

            self.counters = RelayCounters(metrics)
            metrics.sessions_active.inc()
        self.log_extra = {"connection_id": connection_id, "trace_id": trace_id}
        self._debug = log.isEnabledFor(logging.DEBUG)

    # -- feeding the Session ----

    def now_ms(self) -> float:
        return self.loop.time() * 1000.0

    def feed(self, event: ev.Event) -> None:
        self.execute(self.session.handle(event, self.now_ms()))

    def execute(self, actions: list[act.Action]) -> None:
        relay = self.relay
        for a in actions:
            if isinstance(a, act.SendClient):
                if self._debug:
                    self.debug("client_out", a.type)
                if self.client is not None and not self.client_closing:
                    send_to_client(self.client, WSMsgType.TEXT, a.data)
            elif isinstance(a, act.SendUpstream):
                if self._debug:
                    self.debug("upstream_out", a.type)
                if self.upstream is not None and not self.upstream_closing:
                    self.upstream.send(WSMsgType.TEXT, a.data)
            elif isinstance(a, act.SendAudioUpstream):
                relay.send_audio_upstream(a.data)
            elif isinstance(a, act.SendAudioToClient):
                relay.send_audio_to_client(a.data)
            elif isinstance(a, act.ArmOutput):
                relay.arm(a.response_id, a.item_id)
            elif isinstance(a, act.DropOutput):
                relay.drop(a.response_id)
            elif isinstance(a, act.ConfigureRelay):
                self.configure_relay(a)
            elif isinstance(a, act.StartTimer):
                self.start_timer(a.name, a.delay_ms)
            elif isinstance(a, act.CancelTimer):
                handle = self.timers.pop(a.name, None)
                if handle is not None:
                    handle.cancel()
            elif isinstance(a, act.CloseClient):
                if self.outcome is None:
                    self.outcome = CLOSE_OUTCOMES.get(a.reason, "error")
                self.close_client(a.code, a.reason)
            elif isinstance(a, act.CloseUpstream):
                self.close_upstream(a.code, a.reason)
            elif isinstance(a, act.Log):
                self.emit_log(a)

    def configure_relay(self, a: act.ConfigureRelay) -> None:
        relay = self.relay
        if a.input_format is not None and a.output_format is not None:
            relay.configure_formats(
                a.input_format.encoding,
                a.input_format.rate,
                a.output_format.encoding,
                a.output_format.rate,
            )
        if a.report_appends is not None:
            relay.report_appends = a.report_appends
        if a.gate_open is not None:
            relay.gate_open = a.gate_open

    def start_timer(self, name: str, delay_ms: float) -> None:
        old = self.timers.pop(name, None)
        if old is not None:
            old.cancel()
        self.timers[name] = self.loop.call_later(delay_ms / 1000.0, self.timer_fired, name)

    def timer_fired(self, name: str) -> None:
        self.timers.pop(name, None)
        self.feed(ev.TimerFired(name, self.relay.client_audio_bytes))

    # -- logging ----

    def debug(self, direction: str, message_type: str) -> None:
        extra = {**self.log_extra, "direction": direction, "message_type": message_type}
        log.debug("%s %s", direction, message_type, extra=extra)

    def emit_log(self, a: act.Log) -> None:
        level = logging.getLevelName(a.level.upper())
        if not isinstance(level, int) or not log.isEnabledFor(level):
            return
        # §12.2: every record of a connection carries direction and message_type
        extra: dict[str, Any] = {**self.log_extra, "direction": "internal", "message_type": None}
        extra.update(a.fields)
        log.log(level, a.message, extra=extra)

    # -- client leg (RelayOwner) ----

    def client_connected(self, transport: WSTransport) -> None:
        self.client = transport
        self.execute(self.session.start(self.now_ms()))
        self.upstream_task = self.loop.create_task(self.connect_upstream())

    def client_text(self, data: bytes) -> None:
        if self._debug:
            self.debug("client_in", message_type(data))
        self.feed(ev.ClientText(data))

    def client_audio(self, data: bytes) -> None:
        self.feed(ev.ClientAudio(data))

    def client_too_large(self, size: int) -> None:
        self.feed(ev.ClientMessageTooLarge(size))

    def audio_appended(self, nbytes: int) -> None:
        self.feed(ev.AudioAppended(nbytes))

    def client_close_frame(self, code: int, reason: str) -> None:
        if self.outcome is None:
            self.outcome = "client_closed"
        client = self.client
        if client is not None:
            if not self.client_closing:
                self.client_closing = True
                client.send_close(WSCloseCode(code) if code else WSCloseCode.OK, reason.encode())
            client.disconnect()
            self.drop_later("client", client)
        self.feed(ev.ClientClosed(code or 1005, reason))

    def client_disconnected(self) -> None:
        self.client_gone = True
        if self.outcome is None:
            self.outcome = "client_closed"
        client = self.client
        code = 1006
        if client is not None and client.close_handshake is not None:
            recv = client.close_handshake.recv
            sent = client.close_handshake.sent
            if sent is not None and sent.code.value == 1009 and not self.client_closing:
                # picows cut a frame far over the limit at its header (W7)
                self.feed(ev.ClientMessageTooLarge(self.config.max_client_message_bytes + 1))
            if recv is not None:
                code = recv.code.value
        self.feed(ev.ClientClosed(code))
        self.maybe_finish()

    def close_client(self, code: int, reason: str) -> None:
        client = self.client
        if client is None or self.client_closing:
            return
        self.client_closing = True
        client.send_close(WSCloseCode(code), reason.encode())
        self.drop_later("client", client)

    # -- upstream leg ----

    async def connect_upstream(self) -> None:
        started = self.loop.time()
        try:
            await upstream_connect.connect(self.config, self.relay, self.ssl_context)
            if self.metrics is not None:
                self.metrics.upstream_connect.observe(self.loop.time() - started)
            self.upstream_task = None  # nothing left to cancel: no finished Task kept per session
        except upstream_connect.UpstreamConnectError as exc:
            self.upstream_gone = True
            if not self.abandon_upstream:
                self.feed(ev.UpstreamConnectFailed(exc.reason))
            self.maybe_finish()
        except asyncio.CancelledError:
            self.upstream_gone = True
            self.maybe_finish()
            raise

    def upstream_connected(self, transport: WSTransport) -> None:
        self.upstream = transport
        if self.abandon_upstream:  # the client left during the handshake (U3)
            self.upstream_closing = True
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()
            self.drop_later("upstream", transport)
            return
        self.feed(ev.UpstreamOpened())

    def upstream_text(self, data: bytes, client_audio_bytes: int) -> None:
        if self._debug:
            self.debug("upstream_in", message_type(data))
        self.feed(ev.UpstreamText(data, client_audio_bytes))

    def upstream_binary(self, size: int) -> None:
        self.feed(ev.UpstreamBinary(size))

    def upstream_too_large(self, size: int) -> None:
        self.feed(ev.UpstreamMessageTooLarge(size))

    def upstream_close_frame(self, code: int, reason: str) -> None:
        upstream = self.upstream
        if upstream is not None:
            if not self.upstream_closing:
                self.upstream_closing = True
                upstream.send_close(WSCloseCode(code) if code else WSCloseCode.OK, reason.encode())
            upstream.disconnect()
            self.drop_later("upstream", upstream)
        self.feed(ev.UpstreamClosed(code or 1005, reason))

    def upstream_disconnected(self) -> None:
        self.upstream_gone = True
        upstream = self.upstream
        code, reason = 1006, ""
        if upstream is not None and upstream.close_handshake is not None:
            recv = upstream.close_handshake.recv
            sent = upstream.close_handshake.sent
            if sent is not None and sent.code.value == 1009 and not self.upstream_closing:
                self.feed(ev.UpstreamMessageTooLarge(self.config.max_upstream_message_bytes + 1))
            if recv is not None:
                code, reason = recv.code.value, recv.reason
        self.feed(ev.UpstreamClosed(code, reason))
        self.maybe_finish()

    def close_upstream(self, code: int, reason: str) -> None:
        upstream = self.upstream
        if upstream is None:
            self.abandon_upstream = True
            if self.upstream_task is not None and not self.upstream_task.done():
                self.upstream_task.cancel()
            return
        if self.upstream_closing:
            return
        self.upstream_closing = True
        upstream.send_close(WSCloseCode(code), reason.encode())
        self.drop_later("upstream", upstream)

    # -- both legs ----

    def send_buffer_overflow(self, leg: str) -> None:
        if leg == "client":
            self.feed(ev.ClientSendBufferOverflow())
        else:
            self.feed(ev.UpstreamSendBufferOverflow())

    def send_paused(self, leg: str, paused: bool) -> None:
        """The relay: ``leg``'s write buffer crossed its high-water mark (or drained below low
        water). While it stays above, the stall timer runs (see the module docstring)."""
        name = "stall_" + leg
        handle = self.net_timers.pop(name, None)
        if handle is not None:
            handle.cancel()
        if paused and not self.finished:
            self.net_timers[name] = self.loop.call_later(
                self.stall_timeout_s, self.leg_stalled, leg
            )

    def leg_stalled(self, leg: str) -> None:
        self.net_timers.pop("stall_" + leg, None)
        if self.client_closing if leg == "client" else self.upstream_closing:
            return  # already closing: the close-handshake drop ends it
        log.warning(
            "%s leg accepted no data for %.0f ms: treated as over its send-buffer limit",
            leg,
            self.stall_timeout_s * 1000,
            extra={**self.log_extra, "direction": "internal", "message_type": None},
        )
        self.send_buffer_overflow(leg)

    def drop_later(self, leg: str, transport: WSTransport) -> None:
        """§3.6: drop the TCP connection if the close handshake is not over in 2 s."""
        name = "drop_" + leg
        if name not in self.net_timers:
            self.net_timers[name] = self.loop.call_later(
                CLOSE_HANDSHAKE_TIMEOUT, self.drop, name, transport
            )

    def drop(self, name: str, transport: WSTransport) -> None:
        self.net_timers.pop(name, None)
        transport.disconnect(False)  # abort: never wait for a peer that does not read

    def drain_deadline(self) -> None:
        self.feed(ev.DrainDeadline())

    def maybe_finish(self) -> None:
        """Once both legs are gone: cancel timers, drop references, tell the server (once)."""
        upstream_done = self.upstream_gone or (self.upstream is None and self.abandon_upstream)
        if self.finished or not self.client_gone or not upstream_done:
            if self.client_gone and self.upstream is not None and not self.upstream_gone:
                self.close_upstream(1000, "")
            return
        self.finished = True
        for handle in (*self.timers.values(), *self.net_timers.values()):
            handle.cancel()
        self.timers.clear()
        self.net_timers.clear()
        if self.metrics is not None:
            self.flush_counters()
            self.metrics.sessions_active.dec()
            self.metrics.sessions.labels(self.outcome or "ok").inc()
            self.metrics.session_duration.observe(self.loop.time() - self.started_at)
        self.on_finished(self)

    def flush_counters(self) -> None:
        """Copy the relay's C counters into Prometheus (on a timer and at the end)."""
        if self.counters is not None:
            self.counters.flush(self.relay)
