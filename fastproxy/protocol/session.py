"""The Session: one client connection's protocol state machine (PROTOCOL.md §3-§10).

Theory of operation. ``handle(event, now)`` takes one fact from the network layer (a client or
upstream message, a leg opening or closing, a timer) and returns the actions to perform, in
order. This module owns the connection lifecycle of §3 — phases, the held queue, the first
Settings (§4.1), readiness and the ready sequence (§3.5), teardown and close codes (§3.6) — and
delegates the rest to its parts, each the one place for its section:

- fastproxy.protocol.settings_map  §4 Settings → session.update, §5.1 context items
- fastproxy.protocol.sequencer     §6 response gating (T8-T20)
- fastproxy.protocol.client        §7 client messages (T1-T7)
- fastproxy.protocol.upstream      §8 upstream events, §9.4 audio output, §9.5 barge-in
- fastproxy.protocol.errors        §10 upstream errors

The Session never raises: an unexpected exception in a rule closes only this connection, with
an ``internal_error`` Error, and is logged with its traceback.
"""

from __future__ import annotations

import traceback
from typing import Any

from fastproxy import messages as m
from fastproxy.protocol import events as ev
from fastproxy.protocol.actions import (
    Action,
    CloseClient,
    CloseUpstream,
    ConfigureRelay,
    SendAudioUpstream,
)
from fastproxy.protocol.options import SessionOptions
from fastproxy.protocol.sequencer import Scripted
from fastproxy.protocol.settings_map import UnsupportedAudioFormat, map_settings
from fastproxy.protocol.state import (
    CLOSED,
    COMMIT_TIMER,
    CONNECTING,
    OPEN,
    READY,
    READY_TIMER,
    SEQUENCER_TIMER,
    PendingUpdate,
    SessionState,
)
from fastproxy.protocol.stats import SessionStats
from fastproxy.protocol.upstream import UpstreamEvents

COMMIT_DEBOUNCE_MS = 400  # §9.3


class Session(UpstreamEvents):
    """Events in, actions out. See the module docstring."""

    def __init__(
        self,
        options: SessionOptions,
        *,
        connection_id: str,
        stats: SessionStats | None = None,
    ) -> None:
        self.s = SessionState(options, stats or SessionStats(), connection_id)

    @property
    def phase(self) -> str:
        return self.s.phase

    @property
    def stats(self) -> SessionStats:
        return self.s.stats

    def start(self, now: float) -> list[Action]:
        """The upgrade was accepted: ``Welcome`` is the first message (§3.1)."""
        self.s.now = now
        self.s.out = []
        self.send_client(m.Welcome(request_id=self.s.connection_id))
        return self.s.out

    def handle(self, event: ev.Event, now: float) -> list[Action]:
        s = self.s
        if s.phase == CLOSED:
            return []
        s.now = now
        s.out = []
        try:
            self.dispatch(event)
            if s.phase == READY:
                self.flush_held_closure()
        except Exception as exc:  # a bug must cost one connection, not the process
            self.internal_error(exc)
        return s.out

    def dispatch(self, event: ev.Event) -> None:
        s = self.s
        if isinstance(event, ev.UpstreamText):
            s.client_audio_bytes = event.client_audio_bytes
            self.on_upstream_text(event.data)
        elif isinstance(event, ev.ClientText):
            self.on_client_text(event.data)
        elif isinstance(event, ev.ClientAudio):
            self.on_client_audio(event.data)
        elif isinstance(event, ev.AudioAppended):
            self.on_audio_appended(event.nbytes)
        elif isinstance(event, ev.TimerFired):
            s.client_audio_bytes = max(s.client_audio_bytes, event.client_audio_bytes)
            self.on_timer(event.name)
        elif isinstance(event, ev.UpstreamOpened):
            self.on_upstream_opened()
        elif isinstance(event, ev.UpstreamBinary):
            self.violation("unexpected_upstream_binary", f"{event.size} bytes")
        elif isinstance(event, ev.UpstreamConnectFailed):
            self.send_error("upstream_unavailable", f"upstream connection failed: {event.reason}")
            self.close(1011, "upstream_unavailable", None)
        elif isinstance(event, ev.UpstreamClosed):
            self.on_upstream_closed(event.code, self.redact(event.reason))
        elif isinstance(event, ev.ClientClosed):
            s.client_closed = True
            self.log(
                "info", f"client closed ({event.code})", **{"client.close_code": str(event.code)}
            )
            self.close(None, "", 1000)
        elif isinstance(event, ev.ClientMessageTooLarge):
            self.violation("message_too_large", f"{event.size} bytes")
            self.send_error(
                "message_too_large", f"message of {event.size} bytes exceeds the size limit"
            )
            self.close(1009, "message_too_large", 1000)
        elif isinstance(event, ev.UpstreamMessageTooLarge):
            self.upstream_failure(f"upstream message of {event.size} bytes over the limit", 1009)
        elif isinstance(event, ev.ClientSendBufferOverflow):
            self.violation("client_send_buffer_overflow", "client is not reading")
            self.close(1008, "send_buffer_overflow", 1000)
        elif isinstance(event, ev.UpstreamSendBufferOverflow):
            self.send_error(
                "upstream_closed", "upstream is not reading: send buffer over its limit"
            )
            self.close(1011, "upstream_closed", 1011)
        elif isinstance(event, ev.DrainDeadline):
            self.close(1001, "going_away", 1001)

    # -- client input and the held queue (§3.3, §3.4) -------------------------------------------

    def on_client_text(self, data: bytes) -> None:
        if not data:
            return  # W2
        try:
            msg = m.decode_client_message(data)
        except m.InvalidClientJson as exc:
            self.violation("invalid_client_json", str(exc))
            self.send_error("invalid_client_json", f"Invalid client message: {exc}")
            return
        except m.DisallowedClientType as exc:
            self.violation("disallowed_client_message_type", exc.type_name)
            self.send_error("disallowed_client_message_type", disallowed_description(exc.type_name))
            return
        if isinstance(msg, m.KeepAlive):
            return
        if isinstance(msg, m.Settings) and not self.s.settings_seen:
            self.first_settings(msg)
        elif self.s.phase == READY:
            self.process_client_message(msg)
        else:
            self.hold(("json", msg, len(data)))

    def on_client_audio(self, data: bytes) -> None:
        if not data:
            return  # W2
        if self.s.phase == READY:
            self.s.out.append(SendAudioUpstream(data))
        else:
            self.hold(("audio", data, len(data)))

    def hold(self, entry: tuple[str, Any, int]) -> None:
        s = self.s
        size = entry[2]
        if (
            len(s.held) >= s.options.queue_max_messages
            or s.held_bytes + size > s.options.queue_max_bytes
        ):
            self.overflow("held queue is full")
            return
        s.held.append(entry)
        s.held_bytes += size

    def overflow(self, detail: str) -> None:
        self.violation("client_queue_overflow", detail)
        self.send_error("client_queue_overflow", f"client queue overflow: {detail}")
        self.close(1008, "client_queue_overflow", 1000)

    def on_audio_appended(self, nbytes: int) -> None:
        """§9.3 M1: every append adds to ``pending_bytes`` and restarts the debounce timer."""
        if self.s.options.turn_detection != "manual" or nbytes <= 0:
            return
        self.s.pending_bytes += nbytes
        self.start_timer(COMMIT_TIMER, COMMIT_DEBOUNCE_MS)

    # -- the first Settings (§4.1) ----------------------------------------------------------------

    def first_settings(self, msg: m.Settings) -> None:
        s = self.s
        s.settings_seen = True
        s.settings_at = s.now
        try:
            mapped = map_settings(msg.as_object(), s.options)
        except UnsupportedAudioFormat as exc:
            self.violation("unsupported_audio_format", exc.description)
            self.send_error("unsupported_audio_format", exc.description)
            self.close(1008, "unsupported_audio_format", 1000)
            return
        if mapped.notes:
            self.send_warning(
                "settings_field_ignored", "Ignored Settings fields: " + "; ".join(mapped.notes)
            )
        s.context_items = mapped.context_items
        s.greeting = mapped.greeting
        s.history = mapped.history
        s.instructions = mapped.instructions
        s.output_audio = dict(mapped.output_audio)
        s.input_format = mapped.input_format
        s.output_format = mapped.output_format
        s.out.append(
            ConfigureRelay(
                input_format=mapped.input_format,
                output_format=mapped.output_format,
                gate_open=False,
                report_appends=s.options.turn_detection == "manual",
            )
        )
        update = {"type": "session.update", "session": mapped.session}
        if s.phase == OPEN:
            self.send_settings_update(update)
        else:
            s.update_to_send = update

    def send_settings_update(self, update: dict[str, Any]) -> None:
        event_id = self.send_upstream(update, "settings_update")
        self.s.pending_updates.append(PendingUpdate(event_id, "settings"))
        self.start_timer(READY_TIMER, self.s.options.ready_timeout_ms)  # R6

    def on_upstream_opened(self) -> None:
        s = self.s
        if s.phase != CONNECTING:
            return
        s.phase = OPEN
        if s.update_to_send is not None:
            update, s.update_to_send = s.update_to_send, None
            self.send_settings_update(update)

    # -- readiness (§3.5) ----------------------------------------------------------------------

    def on_session_updated(self) -> None:
        s = self.s
        if not s.pending_updates:
            self.log("debug", "session.updated with no pending session.update ignored")
            return
        pending = s.pending_updates.popleft()
        if pending.purpose == "settings":
            self.ready_sequence()
        elif pending.purpose == "prompt":
            self.send_client(m.PromptUpdated())
        else:
            self.send_client(m.SpeakUpdated())

    def ready_sequence(self) -> None:
        """§3.5 R3, steps 1-6; then the relay's audio gate opens."""
        s = self.s
        s.phase = READY
        self.cancel_timer(READY_TIMER)
        for item in s.context_items:
            self.create_item(dict(item), "context_item")
        self.send_client(m.SettingsApplied())
        s.stats.settings_applied_latency((s.now - s.settings_at) / 1000.0)
        if s.greeting is not None:
            self.send_text("assistant", s.greeting)
            if s.options.greeting == "spoken" and self.enqueue(Scripted(s.greeting)):  # T8
                self.pump()
        while s.held and s.phase == READY:
            kind, payload, size = s.held.popleft()
            s.held_bytes -= size
            if kind == "audio":
                s.out.append(SendAudioUpstream(payload))
            else:
                self.process_client_message(payload)
        if s.phase == READY:
            self.pump()
            s.out.append(ConfigureRelay(gate_open=True))

    # -- timers --------------------------------------------------------------------------------

    def on_timer(self, name: str) -> None:
        s = self.s
        if name not in s.timers:
            return  # cancelled or replaced meanwhile
        if name == READY_TIMER:
            s.timers.discard(name)
            if s.phase != READY:
                timeout = s.options.ready_timeout_ms
                self.send_error(
                    "upstream_unavailable",
                    f"the upstream did not answer session.update within {timeout} ms",
                )
                self.close(1011, "upstream_unavailable", 1000)
        elif name == SEQUENCER_TIMER:
            self.sequencer_timer_fired()
        elif name == COMMIT_TIMER:
            s.timers.discard(name)
            self.t9_commit_debounce()

    # -- teardown (§3.6) -----------------------------------------------------------------------

    def on_upstream_closed(self, code: int, reason: str) -> None:
        s = self.s
        s.upstream_closed = True
        detail = f"code {code}" + (f", reason {reason!r}" if reason else "")
        fields = {"upstream.close_code": str(code)}
        if s.phase != READY:
            self.log("error", f"upstream closed before ready ({detail})", **fields)
            self.send_error("upstream_unavailable", f"upstream closed before ready ({detail})")
            self.close(1011, "upstream_unavailable", None)
            return
        if s.held_closure is not None:  # §10.2: held until the slot frees or the upstream closes
            self.send_client(s.held_closure)
            s.held_closure = None
            s.expected_closure_sent = True
        if code == 1000 or s.expected_closure_sent:
            self.log("info", f"upstream closed ({detail})", **fields)
            self.close(1000, "normal", None)
        else:
            self.log("error", f"upstream closed abnormally ({detail})", **fields)
            self.send_error("upstream_closed", f"upstream closed ({detail})")
            self.close(1011, "upstream_closed", None)

    def upstream_failure(self, detail: str, upstream_code: int) -> None:
        """W7 / §3.4 failures of the upstream leg the proxy detects itself."""
        if self.s.phase == READY:
            self.send_error("upstream_closed", detail)
            self.close(1011, "upstream_closed", upstream_code)
        else:
            self.send_error("upstream_unavailable", detail)
            self.close(1011, "upstream_unavailable", upstream_code)

    def close(self, client_code: int | None, client_reason: str, upstream_code: int | None) -> None:
        """End the pair: close the legs not yet closed, cancel every timer, drop queues."""
        s = self.s
        for name in sorted(s.timers):
            self.cancel_timer(name)
        if client_code is not None and not s.client_closed:
            s.out.append(CloseClient(client_code, client_reason))
        if upstream_code is not None and not s.upstream_closed:
            s.out.append(CloseUpstream(upstream_code))
        s.client_closed = s.upstream_closed = True
        s.phase = CLOSED
        s.held.clear()
        s.held_bytes = 0
        s.fifo.clear()

    def internal_error(self, exc: Exception) -> None:
        s = self.s
        trace = "".join(traceback.format_exception(exc))
        self.log("error", f"internal error, closing the connection: {exc!r}\n{trace}")
        s.stats.violation("internal_error")
        self.send_error("internal_error", "fastproxy hit an internal error on this connection")
        self.close(1011, "internal_error", 1000)


def disallowed_description(type_name: str) -> str:
    shown = type_name if type_name == "(missing)" else f'"{type_name}"'
    return f"Unsupported client message type {shown}. Supported: {', '.join(m.CLIENT_TYPES)}."
