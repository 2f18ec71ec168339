"""Outputs of the sans-I/O Session: what the network layer must do, in list order.

The connection executes the actions of one ``Session.handle`` call in order before it reads the
next event, which is how the ordering rules of PROTOCOL.md (W9, §3.5 R3) survive the split
between the compiled audio relay and the Python control path.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Action",
    "ArmOutput",
    "AudioFormat",
    "CancelTimer",
    "CloseClient",
    "CloseUpstream",
    "ConfigureRelay",
    "DropOutput",
    "Log",
    "SendAudioToClient",
    "SendAudioUpstream",
    "SendClient",
    "SendUpstream",
    "StartTimer",
]


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """One direction's client-side audio format (PROTOCOL.md §4.4).

    ``encoding`` is ``"linear16"``, ``"mulaw"`` or ``"alaw"``; ``rate`` the client's sample rate.
    The upstream side is always linear16 24000 for linear16 and the same codec for mulaw/alaw.
    """

    encoding: str
    rate: int

    @property
    def needs_resampling(self) -> bool:
        return self.encoding == "linear16" and self.rate != 24000

    @property
    def bytes_per_ms(self) -> float:
        return self.rate * 2 / 1000 if self.encoding == "linear16" else self.rate / 1000


@dataclass(frozen=True, slots=True)
class SendUpstream:
    """Send one JSON text message upstream. ``type`` is the event type (for logs/metrics)."""

    data: bytes
    type: str


@dataclass(frozen=True, slots=True)
class SendClient:
    """Send one JSON text message to the client. ``type`` is the message type."""

    data: bytes
    type: str


@dataclass(frozen=True, slots=True)
class SendAudioUpstream:
    """Convert client-format audio with the relay's input converter and append it upstream.

    Used for held audio replayed at READY (and any audio the Session receives in READY); goes
    through the same stateful converter as the relay's fast path (§9.2 RS1).
    """

    data: bytes


@dataclass(frozen=True, slots=True)
class SendAudioToClient:
    """Convert upstream-format audio (24 kHz PCM, or mulaw/alaw) with the relay's output
    converter and send it to the client as one binary message if the result is non-empty.

    Used for deltas that the relay's fast path declined (first delta of an item, unusual JSON).
    """

    data: bytes


@dataclass(frozen=True, slots=True)
class ConfigureRelay:
    """Configure the audio relay. Fields left ``None`` are unchanged.

    ``input_format``/``output_format``: build the converters (§4.4, §9.2), once per connection.
    ``gate_open``: True lets client binary frames go straight upstream; False hands them to the
    Session (``ClientAudio``). ``report_appends``: report ``AudioAppended`` for every append
    (manual commit mode, §9.3).
    """

    input_format: AudioFormat | None = None
    output_format: AudioFormat | None = None
    gate_open: bool | None = None
    report_appends: bool | None = None


@dataclass(frozen=True, slots=True)
class ArmOutput:
    """Let the relay's fast path forward deltas of exactly this (response_id, item_id) pair.

    Deltas of any other pair go to the Session as ``UpstreamText``. ``response_id=None``
    disarms the fast path.
    """

    response_id: str | None
    item_id: str | None


@dataclass(frozen=True, slots=True)
class DropOutput:
    """Drop (never forward) audio deltas of this response: it was interrupted (§9.5 step 2.4)."""

    response_id: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    """(Re)start the named timer: fire ``TimerFired(name)`` after ``delay_ms``.

    Starting a running timer replaces its deadline.
    """

    name: str
    delay_ms: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Stop the named timer if it runs."""

    name: str


@dataclass(frozen=True, slots=True)
class CloseClient:
    """Close the client leg with this code; ``reason`` is the close frame's reason text."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class CloseUpstream:
    """Close the upstream leg with this code (or abandon its handshake if still connecting)."""

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Log:
    """A log record for this connection. ``level`` is a ``logging`` level name.

    ``fields`` are structured extras (direction, message_type, item_id, response_id, call_id,
    error.code ...; PROTOCOL.md §12.2). Text is already redacted (§11.5).
    """

    level: str
    message: str
    fields: tuple[tuple[str, str], ...] = ()


Action = (
    SendUpstream
    | SendClient
    | SendAudioUpstream
    | SendAudioToClient
    | ConfigureRelay
    | ArmOutput
    | DropOutput
    | StartTimer
    | CancelTimer
    | CloseClient
    | CloseUpstream
    | Log
)
