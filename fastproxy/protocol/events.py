"""Inputs of the sans-I/O Session: everything the network layer can tell it.

The Session never reads a clock or a socket. Every fact arrives here as a small frozen object and
goes to ``Session.handle(event, now)``, where ``now`` is the caller's monotonic clock in
milliseconds. Audio that flows through the compiled relay never becomes an event; only the rare
facts the relay reports (audio handed over before readiness, appends in manual mode, deltas the
fast path declined) do.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AudioAppended",
    "ClientAudio",
    "ClientClosed",
    "ClientMessageTooLarge",
    "ClientSendBufferOverflow",
    "ClientText",
    "DrainDeadline",
    "Event",
    "TimerFired",
    "UpstreamBinary",
    "UpstreamClosed",
    "UpstreamConnectFailed",
    "UpstreamMessageTooLarge",
    "UpstreamOpened",
    "UpstreamSendBufferOverflow",
    "UpstreamText",
]


@dataclass(frozen=True, slots=True)
class ClientText:
    """A reassembled client text message (raw bytes; may be invalid UTF-8 or invalid JSON)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ClientAudio:
    """A reassembled client binary message the relay did not forward itself.

    The relay hands binary frames to the Session while its audio gate is closed (before READY),
    so that their order with JSON messages is kept in the held queue (PROTOCOL.md §3.3, W9).
    """

    data: bytes


@dataclass(frozen=True, slots=True)
class AudioAppended:
    """The relay sent ``nbytes`` of upstream-format audio in appends (reported in manual mode only,
    when the Session asked for it with ``ConfigureRelay(report_appends=True)``)."""

    nbytes: int


@dataclass(frozen=True, slots=True)
class UpstreamText:
    """A reassembled upstream text message that the relay's delta fast path did not consume.

    ``client_audio_bytes`` is the relay's running total of binary audio bytes sent to the client
    so far on this connection (read from the relay's C counter when the event is made); the Session
    uses it for the playback record of barge-in truncation (PROTOCOL.md §9.4 O4, §9.5).
    """

    data: bytes
    client_audio_bytes: int = 0


@dataclass(frozen=True, slots=True)
class UpstreamBinary:
    """A binary message from the upstream (W5: ignored, counted)."""

    size: int


@dataclass(frozen=True, slots=True)
class UpstreamOpened:
    """The upstream WebSocket handshake completed."""


@dataclass(frozen=True, slots=True)
class UpstreamConnectFailed:
    """The upstream handshake failed or timed out (§3.2 U2).

    ``reason`` is already free of secrets, e.g. ``"HTTP 401"`` or ``"timeout after 10000 ms"``.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class UpstreamClosed:
    """The upstream leg ended: a close frame (its code and reason) or a drop (code 1006)."""

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ClientClosed:
    """The client leg ended: a close frame (its code and reason) or a drop (code 1006)."""

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ClientMessageTooLarge:
    """A reassembled client message exceeded ``max_client_message_bytes`` (W7)."""

    size: int


@dataclass(frozen=True, slots=True)
class UpstreamMessageTooLarge:
    """A reassembled upstream message exceeded ``max_upstream_message_bytes`` (W7)."""

    size: int


@dataclass(frozen=True, slots=True)
class ClientSendBufferOverflow:
    """Bytes queued for the client passed ``send_buffer_max_bytes`` (§3.4)."""


@dataclass(frozen=True, slots=True)
class UpstreamSendBufferOverflow:
    """Bytes queued for the upstream passed ``send_buffer_max_bytes`` (§3.4)."""


@dataclass(frozen=True, slots=True)
class DrainDeadline:
    """``drain_timeout_ms`` elapsed while draining (§3.6): close both legs with 1001."""


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer the Session started with ``StartTimer(name, ...)`` expired.

    ``client_audio_bytes`` is the relay's running total (as in ``UpstreamText``): audio deltas
    forwarded by the fast path never reach the Session, so the sequencer timer learns from this
    total that a response kept streaming (PROTOCOL.md §6.7, T18).
    """

    name: str
    client_audio_bytes: int = 0


Event = (
    ClientText
    | ClientAudio
    | AudioAppended
    | UpstreamText
    | UpstreamBinary
    | UpstreamOpened
    | UpstreamConnectFailed
    | UpstreamClosed
    | ClientClosed
    | ClientMessageTooLarge
    | UpstreamMessageTooLarge
    | ClientSendBufferOverflow
    | UpstreamSendBufferOverflow
    | DrainDeadline
    | TimerFired
)
