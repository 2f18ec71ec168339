"""Response gating: the single-slot response sequencer of PROTOCOL.md §6.

Theory of operation. The upstream runs one response per conversation at a time; a
``response.create`` or ``session.update`` sent while one runs fails. The proxy therefore owns
one response *slot* — ``active`` is true while a proxy ``response.create`` awaits its
``response.created`` (``pending_create``) or any announced response awaits its
``response.done`` (``open_responses``) — and a FIFO of deferred entries (§6.3). ``pump`` runs
entries from the head while the slot is free and the head is ready; ``start`` takes the slot
and *discharges* queued replies that the starting response already answers; the safety timer
(§6.7) guarantees that nothing waits forever. Transitions T10-T20 of §6.5 live here, each in a
method named after its row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastproxy import messages as m
from fastproxy.protocol.state import (
    RECORDS_KEPT,
    SEQUENCER_TIMER,
    Emitter,
    PendingUpdate,
    ResponseRecord,
)

ACTIVE = object()  # ``timer_for`` marker: the timer guards the active slot
COMPLETED_STATUSES = frozenset({"completed", "cancelled", "failed", "incomplete"})
MIN_COMMIT_MS = 100  # §9.3


# --- §6.3 entries ------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Reply:
    items: tuple[str, ...]
    t0: float
    forced: bool = False


@dataclass(eq=False, slots=True)
class ToolReply:
    epoch: int
    t0: float
    forced: bool = False


@dataclass(eq=False, slots=True)
class Update:
    purpose: str  # prompt | speak
    uid: int = 0  # prompt: the key of its text in prompt_updates
    voice: str = ""  # speak: the new voice
    session: dict[str, Any] | None = None  # speak: the object sent (re-sent as is, T16)
    previous_voice: Any = None  # speak: restored on rejection (§10.3)
    requeued: bool = False  # put back by T16 and still waiting
    forced: bool = False


@dataclass(eq=False, slots=True)
class Scripted:
    text: str
    forced: bool = False


@dataclass(eq=False, slots=True)
class AudioTurn:
    forced: bool = False


Entry = Reply | ToolReply | Update | Scripted | AudioTurn


def join(a: str, b: str) -> str:
    """§6.3 ``join``: UpdatePrompt adds to the prompt; it does not replace it."""
    if not a:
        return b
    if not b:
        return a
    return a + "\n" + b


@dataclass(slots=True)
class _Blocked:
    """Why a head entry is not ready (for the sequencer_timeout Warning, §6.7)."""

    awaited: list[str] = field(default_factory=list)


class Sequencer(Emitter):
    """§6: the slot, the FIFO, and transitions T9-T20."""

    # -- predicates (§6.3) --------------------------------------------------------------------

    def _settled(self, item_id: str | None) -> bool:
        return item_id is not None and (item_id in self.s.confirmed or item_id in self.s.failed)

    def ready(self, entry: Entry) -> bool:
        if isinstance(entry, Reply):
            return all(self._settled(i) for i in entry.items)
        if isinstance(entry, ToolReply):
            record = self.s.epochs.get(entry.epoch)
            if entry.epoch != 0 and record is not None and not record.done:
                return False
            return all(self._settled(c.output_item) for c in self._calls_of(entry.epoch))
        return True

    def _calls_of(self, epoch: int) -> list[Any]:
        return [c for c in self.s.calls.values() if c.epoch == epoch]

    def all_failed(self, entry: Entry) -> bool:
        if isinstance(entry, Reply):
            return all(i in self.s.failed for i in entry.items)
        if isinstance(entry, ToolReply):
            outputs = [c.output_item for c in self._calls_of(entry.epoch)]
            return bool(outputs) and all(o in self.s.failed for o in outputs)
        return False

    def awaited(self, entry: Entry) -> str:
        """What a blocked head waits for, in words (§6.7)."""
        if isinstance(entry, Reply):
            pending = [i for i in entry.items if not self._settled(i)]
            return "confirmation of item " + ", ".join(pending)
        if isinstance(entry, ToolReply):
            record = self.s.epochs.get(entry.epoch)
            if entry.epoch != 0 and record is not None and not record.done:
                return f"response.done for {record.response_id or 'the pending response'}"
            parts = []
            for call_id, call in self.s.calls.items():
                if call.epoch != entry.epoch:
                    continue
                if call.output_item is None:
                    parts.append(f"function results for {call_id}")
                elif not self._settled(call.output_item):
                    parts.append(f"confirmation of item {call.output_item}")
            return ", ".join(parts) or "function results"
        return "the response slot"

    # -- queue -------------------------------------------------------------------------------

    def enqueue(self, entry: Entry) -> bool:
        """Append to the FIFO; on overflow close the connection (§3.4). False if closed."""
        if len(self.s.fifo) >= self.s.options.queue_max_messages:
            self.overflow("sequencer queue is full")
            return False
        self.s.fifo.append(entry)
        return True

    def overflow(self, detail: str) -> None:
        raise NotImplementedError  # pragma: no cover - provided by the lifecycle part

    def build_prompt_update(self) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover - provided by the client-message part

    # -- §6.4 procedures ------------------------------------------------------------------------

    def pump(self) -> None:
        s = self.s
        while s.fifo and not s.active and not s.upstream_closed:
            head = s.fifo[0]
            if self.all_failed(head):
                s.fifo.popleft()
                continue
            if not self.ready(head) and not head.forced:
                break
            s.fifo.popleft()
            self.run(head)
        self.update_timer()

    def start_response(
        self, kind: str, t0: float, response_id: str | None = None
    ) -> ResponseRecord:
        s = self.s
        s.epoch += 1
        record = ResponseRecord(epoch=s.epoch, kind=kind, t0=t0, response_id=response_id)
        s.epochs[s.epoch] = record
        if response_id is not None:
            s.open_responses[response_id] = s.epoch
            self.remember(response_id, record)
        else:
            s.pending_create = s.epoch
        if kind != "scripted":
            self.discharge()
        s.last_turn_end = None
        s.stats.turn_started(kind)
        self.restart_timer()
        return record

    def discharge(self) -> None:
        fifo = self.s.fifo
        while fifo and isinstance(fifo[0], Reply | ToolReply) and self.ready(fifo[0]):
            fifo.popleft()

    def update_timer(self) -> None:
        s = self.s
        if s.active:
            return
        head = s.fifo[0] if s.fifo else None
        if head is not None and not self.ready(head) and not head.forced:
            if s.timer_for is not head:
                s.timer_for = head
                s.audio_at_timer = s.client_audio_bytes
                self.start_timer(SEQUENCER_TIMER, s.options.sequencer_timeout_ms)
        elif s.timer_for is not None:
            s.timer_for = None
            self.cancel_timer(SEQUENCER_TIMER)

    def restart_timer(self) -> None:
        s = self.s
        s.timer_for = ACTIVE
        s.audio_at_timer = s.client_audio_bytes
        s.activity_at = s.now
        self.start_timer(SEQUENCER_TIMER, s.options.sequencer_timeout_ms)

    def remember(self, response_id: str, record: ResponseRecord) -> None:
        records = self.s.records
        records[response_id] = record
        records.move_to_end(response_id)
        while len(records) > RECORDS_KEPT:
            records.popitem(last=False)

    # -- run(entry) (§6.3) ------------------------------------------------------------------------

    def run(self, entry: Entry) -> None:
        s = self.s
        if isinstance(entry, Reply):
            self.create_response("reply", entry.t0)
        elif isinstance(entry, ToolReply):
            self.create_response("tool", entry.t0)
        elif isinstance(entry, Update):
            self.run_update(entry)
        elif isinstance(entry, Scripted):
            instructions = (
                "Say exactly the following text, word for word, and nothing else:\n" + entry.text
            )
            event = {
                "type": "response.create",
                "response": {"conversation": "none", "instructions": instructions},
            }
            self.send_upstream(event, "response_create", s.epoch + 1)
            self.start_response("scripted", s.now)
        else:
            if s.pending_bytes >= MIN_COMMIT_MS * self.upstream_bytes_per_ms():
                self.send_upstream({"type": "input_audio_buffer.commit"}, "commit")
                s.pending_bytes = 0
                self.create_response("audio", s.now)

    def create_response(self, kind: str, t0: float) -> None:
        self.send_upstream({"type": "response.create"}, "response_create", self.s.epoch + 1)
        self.start_response(kind, t0)

    def upstream_bytes_per_ms(self) -> int:
        return 48 if self.s.input_format.encoding == "linear16" else 8

    def run_update(self, entry: Update) -> None:
        s = self.s
        if entry.purpose == "prompt":
            event = self.build_prompt_update()
        else:
            if entry.session is None:
                entry.previous_voice = s.output_audio.get("voice")
                s.output_audio["voice"] = entry.voice
                entry.session = {"type": "realtime", "audio": {"output": dict(s.output_audio)}}
            event = {"type": "session.update", "session": entry.session}
        entry.requeued = False
        event_id = self.send_upstream(event, "update", entry)
        s.pending_updates.append(PendingUpdate(event_id, entry.purpose, entry))

    # -- transitions ----------------------------------------------------------------------------

    def t10_item_event(self, item: Any) -> None:
        """T10 / §6.6: the first item event naming a proxy item id confirms it."""
        item_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(item_id, str):
            return
        if item_id in self.s.sent_items and item_id not in self.s.confirmed:
            self.s.confirmed.add(item_id)
            self.pump()

    def t11_t12_response_created(self, response_id: str) -> ResponseRecord | None:
        s = self.s
        s.user_speaking = False
        if response_id in s.announced:
            return None
        s.announced.add(response_id)
        if s.pending_create is None:  # T11: the upstream started it (server VAD, ...)
            t0 = s.last_turn_end if s.last_turn_end is not None else s.now
            return self.start_response("server", t0, response_id)
        record = s.epochs[s.pending_create]  # T12: it answers the proxy's response.create
        record.response_id = response_id
        s.pending_create = None
        s.open_responses[response_id] = record.epoch
        self.remember(response_id, record)
        return record

    def t13_response_done(self, response_id: str, status: Any) -> bool:
        """T13 (True) or T14 (False: not open, client signals only)."""
        s = self.s
        epoch = s.open_responses.pop(response_id, None)
        if epoch is None:
            return False
        s.epochs[epoch].done = True
        known = isinstance(status, str) and status in COMPLETED_STATUSES  # status is raw JSON
        s.stats.turn_completed(status if known else "incomplete")
        self.pump()
        return True

    def t16_conflict(self, event_id: Any) -> None:
        """T16: ``conversation_already_has_active_response`` (never forwarded, §10.1)."""
        s = self.s
        self.violation("active_response_conflict", "conversation_already_has_active_response")
        if not s.active:
            self.start_response("server", s.now)
        pending = next((p for p in s.pending_updates if p.event_id == event_id), None)
        if pending is None or pending.purpose == "settings":
            return
        s.pending_updates.remove(pending)
        entry: Update = pending.entry
        entry.requeued = True
        position = 0
        while position < len(s.fifo):
            head = s.fifo[position]
            if not (isinstance(head, Update) and head.requeued):
                break
            position += 1
        s.fifo.insert(position, entry)
        self.pump()

    def t17_item_failed(self, item_id: str, error: m.Error) -> None:
        self.s.failed.add(item_id)
        self.send_client(error)
        self.pump()

    def t17a_create_rejected(self, epoch: int, error: m.Error) -> bool:
        """T17a: a rejected proxy response.create not yet answered frees the slot."""
        s = self.s
        if s.pending_create != epoch:
            return False
        s.pending_create = None
        s.epochs[epoch].done = True
        s.stats.turn_completed("failed")
        self.send_client(error)
        self.pump()
        return True

    def t18_response_event(self) -> None:
        """T18: a ``response.*`` event while active restarts the timer. Recorded as a time and
        applied when the timer fires, so streaming events cost no timer operations."""
        if self.s.active:
            self.s.activity_at = self.s.now

    def t9_commit_debounce(self) -> None:
        """§9.3 M2 / T9."""
        s = self.s
        if s.pending_bytes < MIN_COMMIT_MS * self.upstream_bytes_per_ms():
            return
        if any(isinstance(e, AudioTurn) for e in s.fifo):
            return
        if self.enqueue(AudioTurn()):
            self.pump()

    def sequencer_timer_fired(self) -> None:
        """T19 / T20 (§6.7)."""
        s = self.s
        s.timers.discard(SEQUENCER_TIMER)
        timer_for, s.timer_for = s.timer_for, None
        if s.active:
            timeout = s.options.sequencer_timeout_ms
            if s.client_audio_bytes > s.audio_at_timer:
                # Audio deltas went through the relay's fast path since the timer started:
                # those are response.* events too (T18), the Session just did not see them.
                self.restart_timer()
            elif s.now - s.activity_at < timeout:
                s.timer_for = ACTIVE
                self.start_timer(SEQUENCER_TIMER, timeout - (s.now - s.activity_at))
            else:
                self.t19_give_up()
            return
        head: Entry | None = s.fifo[0] if s.fifo else None
        if head is not None and timer_for is head and not self.ready(head):
            head.forced = True
            self.send_warning("sequencer_timeout", "timed out waiting for " + self.awaited(head))
            self.violation("sequencer_timeout", self.awaited(head))
            self.pump()

    def t19_give_up(self) -> None:
        s = self.s
        awaited: list[str] = []
        if s.pending_create is not None:
            s.epochs[s.pending_create].done = True
            s.stats.turn_completed("timeout")
            awaited.append("response.created for the proxy's response.create")
            s.pending_create = None
        for response_id, epoch in s.open_responses.items():
            s.epochs[epoch].done = True
            s.stats.turn_completed("timeout")
            awaited.append(f"response.done for {response_id}")
        s.open_responses.clear()
        text = ", ".join(awaited)
        self.send_warning("sequencer_timeout", "timed out waiting for " + text)
        self.violation("sequencer_timeout", text)
        self.pump()
