"""The per-connection state shared by the Session's parts, and the helpers that emit actions.

Theory of operation: ``Session.handle`` sets ``now``, clears ``out``, dispatches the event to
the part that owns its rule (lifecycle §3, client messages §7, sequencer §6, upstream events §8,
audio path §9, errors §10), and returns ``out``. Parts never perform I/O: they append actions
through the helpers below, which also enforce the closing rules of §3.6 (nothing is sent on a
leg after the Session decided to close it).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastproxy import messages as m
from fastproxy.protocol.actions import (
    Action,
    AudioFormat,
    CancelTimer,
    Log,
    SendClient,
    SendUpstream,
    StartTimer,
)
from fastproxy.protocol.options import SessionOptions
from fastproxy.protocol.stats import SessionStats

# Phases of §3.3.
CONNECTING = "CONNECTING"
OPEN = "OPEN"
READY = "READY"
CLOSED = "CLOSED"

# Timer names (StartTimer / TimerFired).
READY_TIMER = "ready"
SEQUENCER_TIMER = "sequencer"
COMMIT_TIMER = "commit"

PCM24 = AudioFormat("linear16", 24000)
SENT_EVENTS_KEPT = 4096  # event ids remembered for error correlation (§10.3)
RECORDS_KEPT = 256  # response records remembered for late events (§8.3)


@dataclass(slots=True)
class ResponseRecord:
    """§6.2 ``epochs[e]`` / §8.3 orphan record: one response as the client sees it."""

    epoch: int  # 0 for orphan records
    kind: str  # reply | tool | audio | scripted | server
    t0: float
    response_id: str | None = None
    done: bool = False
    interrupted: bool = False
    t_first: float | None = None  # first text/transcript/audio delta (§8.3)
    speaking_sent: bool = False  # AgentStartedSpeaking
    audio_done_sent: bool = False  # AgentAudioDone


@dataclass(slots=True)
class Call:
    """§6.2 ``calls[call_id]``."""

    epoch: int
    name: str
    arguments: str
    output_item: str | None = None


@dataclass(slots=True)
class SentEvent:
    """What a P→U ``event_id`` referred to (§10.3): ``kind`` and its subject."""

    kind: str  # settings_update | update | context_item | item | response_create | other
    subject: Any = None


@dataclass(slots=True)
class PendingUpdate:
    """§3.5 R2: a ``session.update`` sent and not yet answered."""

    event_id: str
    purpose: str  # settings | prompt | speak
    entry: Any = None  # the sequencer's Update entry (prompt/speak)


@dataclass(slots=True)
class Playback:
    """§9.4 O4: the most recent item whose audio was forwarded to the client."""

    response_id: str
    item_id: str
    first_at: float
    bytes_base: int  # the relay's client-audio byte total before this item's first message


@dataclass(slots=True)
class SessionState:
    """Everything one connection's Session knows. Plain data; the parts hold the rules.

    The containers declared ``field(init=False)`` are created on first use (``__getattr__``,
    table ``_LAZY``), not in ``__init__``: an idle session never touches most of them, and an
    empty set or deque costs 216 or 760 bytes (RSS per idle session, README "Performance").
    """

    options: SessionOptions
    stats: SessionStats
    connection_id: str
    phase: str = CONNECTING
    now: float = 0.0
    out: list[Action] = field(default_factory=list)
    client_closed: bool = False
    upstream_closed: bool = False
    timers: set[str] = field(init=False)
    event_counter: int = 0
    item_counter: int = 0
    sent_events: OrderedDict[str, SentEvent] = field(init=False)

    # Settings and readiness (§3.3-§3.5, §4.1)
    settings_seen: bool = False
    settings_at: float = 0.0
    update_to_send: dict[str, Any] | None = None  # the first session.update while CONNECTING
    pending_updates: deque[PendingUpdate] = field(init=False)
    held: deque[Any] = field(init=False)  # ("audio", bytes) | ("json", message)
    held_bytes: int = 0
    context_items: tuple[dict[str, Any], ...] = ()
    greeting: str | None = None
    history: bool = True
    instructions: str = ""
    output_audio: dict[str, Any] = field(init=False)
    input_format: AudioFormat = PCM24
    output_format: AudioFormat = PCM24

    # Sequencer (§6.2)
    open_responses: dict[str, int] = field(init=False)  # response id -> epoch
    pending_create: int | None = None
    epoch: int = 0
    epochs: dict[int, ResponseRecord] = field(init=False)
    sent_items: set[str] = field(init=False)
    confirmed: set[str] = field(init=False)
    failed: set[str] = field(init=False)
    calls: dict[str, Call] = field(init=False)
    fifo: deque[Any] = field(init=False)
    timer_for: object | None = None  # None (off), ACTIVE, or the blocked head entry
    audio_at_timer: int = 0
    activity_at: float = 0.0  # last response.* event while active (T18)
    user_speaking: bool = False
    prompt_updates: list[tuple[int, str]] = field(init=False)
    prompt_counter: int = 0
    pending_bytes: int = 0  # manual mode (§9.3)
    last_turn_end: float | None = None

    # Responses as the client sees them (§8.3, §9.4, §9.5)
    announced: set[str] = field(init=False)
    records: OrderedDict[str, ResponseRecord] = field(init=False)
    shared_orphan: ResponseRecord | None = None
    text_items: set[str] = field(init=False)  # rule A: one ConversationText per item
    thinking_items: set[str] = field(init=False)
    transcripts: dict[str, str] = field(init=False)
    playback: Playback | None = None
    armed: tuple[str, str] | None = None
    client_audio_bytes: int = 0  # latest relay total seen in an event

    # Errors (§10.2)
    held_closure: m.Error | None = None
    expected_closure_sent: bool = False

    if not TYPE_CHECKING:  # for mypy the fields are plain attributes

        def __getattr__(self, name: str) -> Any:
            """Only called for an unset slot: create the lazy container ``name``."""
            factory = _LAZY.get(name)
            if factory is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            value = factory()
            object.__setattr__(self, name, value)
            return value

    @property
    def active(self) -> bool:
        """§6.2: some response is believed running upstream."""
        return self.pending_create is not None or _nonempty(self, "open_responses")

    @property
    def busy(self) -> bool:
        return self.active or _nonempty(self, "fifo")


def _nonempty(state: SessionState, name: str) -> bool:
    """Whether lazy container ``name`` holds anything, without creating it just to look."""
    try:
        return bool(object.__getattribute__(state, name))  # bypasses __getattr__
    except AttributeError:
        return False


_LAZY: dict[str, Any] = {
    "timers": set,
    "sent_events": OrderedDict,
    "pending_updates": deque,
    "held": deque,
    "output_audio": dict,
    "open_responses": dict,
    "epochs": dict,
    "sent_items": set,
    "confirmed": set,
    "failed": set,
    "calls": dict,
    "fifo": deque,
    "prompt_updates": list,
    "announced": set,
    "records": OrderedDict,
    "text_items": set,
    "thinking_items": set,
    "transcripts": dict,
}


class Emitter:
    """The action-emitting helpers every part of the Session uses."""

    s: SessionState

    # -- client leg ---------------------------------------------------------------------------

    def send_client(self, msg: m.ServerMessage) -> None:
        if self.s.client_closed:
            return
        type_name = msg.__struct_config__.tag
        self.s.out.append(
            SendClient(m.encode(msg), type_name if isinstance(type_name, str) else "")
        )

    def send_text(self, role: str, content: str) -> None:
        """``ConversationText`` followed by its ``History`` (§5.3 H1)."""
        self.send_client(m.ConversationText(role=role, content=content))
        if self.s.history:
            self.send_client(m.History(role=role, content=content))

    def send_error(self, code: str, description: str) -> None:
        self.send_client(m.Error(description=description, code=code))

    def send_warning(self, code: str, description: str) -> None:
        self.send_client(m.Warning(description=description, code=code))

    # -- upstream leg -------------------------------------------------------------------------

    def new_event_id(self) -> str:
        self.s.event_counter += 1
        return f"fpe_{self.s.event_counter}"

    def new_item_id(self) -> str:
        self.s.item_counter += 1
        return f"fp_{self.s.item_counter}"

    def send_upstream(self, event: dict[str, Any], kind: str = "other", subject: Any = None) -> str:
        """Send one P→U event with a fresh ``event_id`` (J6); remember it for §10.3."""
        event_id = self.new_event_id()
        if self.s.upstream_closed:
            return event_id
        event["event_id"] = event_id
        sent = self.s.sent_events
        sent[event_id] = SentEvent(kind, subject)
        if len(sent) > SENT_EVENTS_KEPT:
            sent.popitem(last=False)
        self.s.out.append(SendUpstream(m.encode(event), event["type"]))
        return event_id

    def create_item(self, item: dict[str, Any], kind: str) -> str:
        """``conversation.item.create`` for a proxy item with the next ``fp_<n>`` id (§1.5)."""
        item_id = self.new_item_id()
        self.s.sent_items.add(item_id)
        self.send_upstream(
            {"type": "conversation.item.create", "item": {"id": item_id, **item}}, kind, item_id
        )
        return item_id

    # -- timers, logs, counts -----------------------------------------------------------------

    def start_timer(self, name: str, delay_ms: float) -> None:
        self.s.timers.add(name)
        self.s.out.append(StartTimer(name, delay_ms))

    def cancel_timer(self, name: str) -> None:
        if name in self.s.timers:
            self.s.timers.discard(name)
            self.s.out.append(CancelTimer(name))

    def log(self, level: str, message: str, **fields: str) -> None:
        self.s.out.append(Log(level, message, tuple(fields.items())))

    def violation(self, kind: str, detail: str) -> None:
        """Count a protocol violation (§12.3) and log it at warning (§12.2)."""
        self.s.stats.violation(kind)
        self.log("warning", f"protocol violation {kind}: {detail}", violation=kind)

    def redact(self, text: str) -> str:
        """§11.5: replace the API key and every client token by ``[redacted]``."""
        for secret in self.s.options.secrets:
            if secret:
                text = text.replace(secret, "[redacted]")
        return text
