"""What the mock upstream does by default, as one mutable options object.

:class:`MockBehaviour` is read by :class:`~fastproxy.testing.mock_upstream.MockUpstream` when a
TCP connection is accepted (handshake options, message size limit) and copied into each
:class:`~fastproxy.testing.connection.MockConnection` when its upgrade is accepted, so a test can
change ``mock.behaviour`` for the next connection and ``conn.behaviour`` for one connection.

Item confirmation is a policy: ``confirm_items`` is ``True`` (confirm every item at once),
``False`` (confirm nothing) or a callable ``(conn, event) -> decision`` returning a
:class:`ConfirmItem`, :class:`RejectItem`, :class:`IgnoreItem`, ``True``/``False``/``None``.
:func:`confirm_only` builds the common "confirm only these item types, maybe late" policy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .scripts import ReplySpec

if TYPE_CHECKING:
    from .connection import MockConnection

Event = dict[str, Any]

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ConfirmItem:
    """Confirm a ``conversation.item.create`` with ``events`` (after ``delay_ms``)."""

    delay_ms: float = 0.0
    events: tuple[str, ...] = ("conversation.item.added", "conversation.item.done")
    """Confirmation events to send, in order (``conversation.item.created`` is accepted too)."""


@dataclass(frozen=True, slots=True)
class RejectItem:
    """Answer a ``conversation.item.create`` with an ``error`` naming its ``event_id`` (P-67)."""

    code: str = "invalid_value"
    message: str = "Bad item"
    type: str = "invalid_request_error"
    delay_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class IgnoreItem:
    """Do not confirm (the item still joins the mock's conversation)."""


ItemDecision = ConfirmItem | RejectItem | IgnoreItem | bool | None
ItemPolicy = Callable[["MockConnection", Event], ItemDecision]

EventHook = Callable[["MockConnection", Event], "bool | Awaitable[Any] | None"]
"""``(conn, event) -> handled``: return True to skip the default handling of ``event``. An
async hook (or any hook returning an awaitable) runs as a task and counts as handled."""

ConnHook = Callable[["MockConnection"], "Awaitable[Any] | None"]
BinaryHook = Callable[["MockConnection", bytes], "Awaitable[Any] | None"]
ReplyTextSource = str | Callable[["MockConnection", "Event | None"], str]


def confirm_only(*item_types: str, delay_ms: float = 0.0) -> ItemPolicy:
    """A policy confirming only items whose ``type`` is in ``item_types`` (P-61, P-119)."""
    wanted = frozenset(item_types)

    def policy(conn: MockConnection, event: Event) -> ItemDecision:
        item = event.get("item")
        if isinstance(item, dict) and item.get("type") in wanted:
            return ConfirmItem(delay_ms=delay_ms)
        return IgnoreItem()

    return policy


def confirm_after(delay_ms: float) -> ItemPolicy:
    """A policy confirming every item ``delay_ms`` after it arrives."""
    decision = ConfirmItem(delay_ms=delay_ms)

    def policy(conn: MockConnection, event: Event) -> ItemDecision:
        return decision

    return policy


@dataclass
class MockBehaviour:
    """Every option of the mock upstream. Field groups: handshake, session, items, responses,
    modes (echo / VAD), recording."""

    # -- handshake (read when the TCP connection is accepted)
    handshake_delay_ms: float = 0.0
    """Hold the upgrade request this long before answering it (P-04, P-11, P-122)."""
    refuse_status: int | None = None
    """Answer the upgrade with this HTTP status (>= 400) instead of 101 (P-05)."""
    refuse_body: bytes = b'{"error":{"type":"invalid_request_error","code":"invalid_api_key"}}'
    never_answer_upgrade: bool = False
    """Accept TCP, read the request, never respond (P-06)."""
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    """Largest frame and largest reassembled message accepted (over → close 1009)."""

    # -- session
    send_session_created: bool = True
    session_updated_on_open: bool = False
    """Also send an unsolicited ``session.updated`` right after ``session.created`` (P-31)."""
    answer_session_update: bool = True
    session_updated_delay_ms: float = 0.0
    minimal_session_events: bool = False
    """Send H2's exact ``session.created`` / ``session.updated`` bodies instead of full
    session objects."""
    validate_session_type: bool = True
    """Answer a ``session.update`` without ``session.type`` with an error, like the GA API."""

    # -- items
    confirm_items: bool | ItemPolicy = True

    # -- responses
    reply: bool = True
    """Answer ``response.create`` (when ``replies`` is empty) with the default reply."""
    replies: list[ReplySpec] = field(default_factory=list)
    """Reply specs consumed in order by successive ``response.create`` (and VAD turns)."""
    reply_text: ReplyTextSource | None = None
    """Transcript of default replies. None: "Say exactly …" text for such requests, else
    ``"You said: <text>"`` for the last user text since the previous response, else
    "Hello from the mock upstream."."""
    reply_audio_ms: int = 600
    delta_ms: int = 100
    """Audio per ``response.output_audio.delta``."""
    pacing_ms: float = 0.0
    """Pause between audio deltas (0: the whole reply is written at once)."""
    enforce_single_response: bool = True
    """Answer ``response.create`` while a response is active with
    ``conversation_already_has_active_response`` naming its ``event_id``, like the API."""
    answer_control: bool = True
    """Answer commit / clear / response.cancel / truncate / delete and unknown event types as
    the API does (committed + user item, cleared, cancelled response.done, truncated, error)."""
    user_transcript: str = "Hello, can you hear me?"
    """Transcript of committed user audio (VAD or manual commit)."""
    transcribe: bool | None = None
    """Send input transcription events after a commit: None = only when the session has
    ``audio.input.transcription`` set (as the API does)."""

    # -- modes
    echo: bool = False
    """Answer every ``input_audio_buffer.append`` with one ``response.output_audio.delta``
    carrying the same base64 (``resp_echo`` / ``item_echo``), nothing else."""
    vad: bool = False
    """Simulate server VAD on appended PCM16 24 kHz (speech_started … reply)."""
    vad_threshold_rms: float = 500.0
    vad_min_speech_ms: int = 60
    vad_silence_ms: int = 200
    vad_prefix_padding_ms: int = 300
    vad_create_response: bool = True
    vad_interrupt_response: bool = True

    # -- faults (tests/hardening)
    withhold_events: frozenset[str] = frozenset()
    """Event types this mock never sends, e.g. ``{"response.done"}`` for an upstream that never
    ends its responses (PROTOCOL.md §6.7). Sends of them are recorded in
    ``MockConnection.withheld`` and reported as successful."""

    # -- recording
    record_appends: bool | None = None
    """Record ``input_audio_buffer.append`` events (None: all but in echo mode)."""
    max_recorded: int = 100_000
    """Received and sent records kept per connection (oldest dropped beyond)."""

    def copy(self) -> MockBehaviour:
        """An independent copy (``replies`` is copied too)."""
        return dataclasses.replace(self, replies=list(self.replies))

    def validate(self) -> None:
        if self.refuse_status is not None and not 400 <= self.refuse_status <= 599:
            raise ValueError(
                f"refuse_status must be an HTTP error status, got {self.refuse_status}"
            )
        if self.max_message_bytes < 1024:
            raise ValueError("max_message_bytes must be at least 1024")
        if self.delta_ms <= 0 or self.reply_audio_ms < 0:
            raise ValueError("delta_ms must be > 0 and reply_audio_ms >= 0")
        if self.max_recorded < 16:
            raise ValueError("max_recorded must be at least 16")

    @classmethod
    def h2(cls, *, confirming: bool = False, **overrides: Any) -> MockBehaviour:
        """PROTOCOL.md §13.1 H2 exactly: ``session.created`` on open, ``session.updated`` for
        each ``session.update``, item confirmations only if ``confirming``, nothing else."""
        b = cls(
            minimal_session_events=True,
            validate_session_type=False,
            confirm_items=confirming,
            reply=False,
            enforce_single_response=False,
            answer_control=False,
        )
        return dataclasses.replace(b, **overrides)
