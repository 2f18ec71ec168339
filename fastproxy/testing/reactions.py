"""The mock upstream's default reactions to client events (what the real API would send).

One function per client event type, applied by :class:`MockConnection` when no hook handled
the event; :class:`MockBehaviour` switches each of them on or off. Errors name the client
event's ``event_id`` like the API's do (§10.3), and their codes and messages copy the API's.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import events as ev
from .behaviour import ConfirmItem, RejectItem
from .speech import BYTES_PER_MS

if TYPE_CHECKING:
    from .connection import MockConnection

Event = dict[str, Any]

ECHO_RESPONSE_ID = "resp_echo"
ECHO_ITEM_ID = "item_echo"
MIN_COMMIT_BYTES = 100 * BYTES_PER_MS  # the API refuses to commit under 100 ms of audio

CLIENT_EVENT_TYPES = frozenset(
    {
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "conversation.item.delete",
        "response.create",
        "response.cancel",
        "output_audio_buffer.clear",
    }
)


def default(conn: MockConnection, event: Event, etype: Any) -> None:
    handler = DEFAULTS.get(etype) if isinstance(etype, str) else None
    if handler is not None:
        handler(conn, event)
    elif conn.behaviour.answer_control:
        if not isinstance(etype, str):
            conn.reject(
                event,
                "missing_required_parameter",
                "Missing required parameter: 'type'.",
                param="type",
            )
        elif etype not in CLIENT_EVENT_TYPES:
            conn.reject(event, "invalid_value", f"Invalid value: '{etype}'.", param="type")


def on_session_update(conn: MockConnection, event: Event) -> None:
    b = conn.behaviour
    session = event.get("session")
    if not isinstance(session, dict):
        conn.reject(
            event,
            "missing_required_parameter",
            "Missing required parameter: 'session'.",
            param="session",
        )
        return
    if b.validate_session_type and "type" not in session:
        conn.reject(
            event,
            "missing_required_parameter",
            "Missing required parameter: 'session.type'.",
            param="session.type",
        )
        return
    conn.session = ev.deep_merge(conn.session, session)
    if not b.answer_session_update:
        return
    body = None if b.minimal_session_events else conn.session

    def answer() -> None:
        conn.send(ev.session_updated(body))

    if b.session_updated_delay_ms > 0:
        conn.call_later(b.session_updated_delay_ms, answer)
    else:
        answer()


def on_item_create(conn: MockConnection, event: Event) -> None:
    item = event.get("item")
    if not isinstance(item, dict):
        conn.reject(
            event,
            "missing_required_parameter",
            "Missing required parameter: 'item'.",
            param="item",
        )
        return
    if not isinstance(item.get("id"), str):
        item = {"id": conn.new_item_id(), **item}
    policy = conn.behaviour.confirm_items
    decision = policy(conn, event) if callable(policy) else policy
    if isinstance(decision, RejectItem):
        eid = event.get("event_id")
        err = ev.error(
            decision.code,
            decision.message,
            eid if isinstance(eid, str) else None,
            type=decision.type,
        )
        if decision.delay_ms > 0:
            conn.call_later(decision.delay_ms, lambda: conn.send(err))
        else:
            conn.send(err)
        return
    item_id: str = item["id"]
    conn.items[item_id] = item
    conn._last_item_id = item_id
    if item.get("type") == "message" and item.get("role") == "user":
        texts = [
            c.get("text")
            for c in item.get("content") or []
            if isinstance(c, dict) and isinstance(c.get("text"), str)
        ]
        if texts:
            conn._pending_user_text = " ".join(t for t in texts if t)
    if decision is True:
        decision = ConfirmItem()
    if not isinstance(decision, ConfirmItem):
        return
    names = decision.events
    if decision.delay_ms > 0:
        conn.call_later(decision.delay_ms, lambda: conn.confirm_item(item, names))
    else:
        conn.confirm_item(item, names)


def on_response_create(conn: MockConnection, event: Event) -> None:
    b = conn.behaviour
    if b.enforce_single_response and conn.active_responses:
        eid = event.get("event_id")
        conn.send(ev.active_response_error(eid if isinstance(eid, str) else None))
        return
    conn.start_reply(None, event)


def on_append(conn: MockConnection, event: Event) -> None:
    audio = event.get("audio")
    if not isinstance(audio, str):
        if conn.behaviour.answer_control:
            conn.reject(
                event,
                "missing_required_parameter",
                "Missing required parameter: 'audio'.",
                param="audio",
            )
        return
    if conn.behaviour.echo:
        conn.send(ev.audio_delta(ECHO_RESPONSE_ID, ECHO_ITEM_ID, b64=audio), stamp=False)
        return
    size = len(audio) * 3 // 4 - audio[-2:].count("=")
    conn.input_buffer_bytes += size
    conn.input_audio_bytes += size
    if conn._vad is not None:
        try:
            pcm = binascii.a2b_base64(audio)
        except (binascii.Error, ValueError):
            return
        for boundary in conn._vad.feed(pcm):
            if boundary.kind == "start":
                vad_speech_started(conn, boundary.ms)
            else:
                vad_speech_stopped(conn, boundary.ms)


def vad_speech_started(conn: MockConnection, ms: int) -> None:
    b = conn.behaviour
    if b.vad_interrupt_response:
        for rid in list(conn.active_responses):
            conn.cancel_response(rid, "turn_detected")
    conn._speech_item = conn.new_item_id()
    conn._speech_start_ms = max(0, ms - b.vad_prefix_padding_ms)
    conn.send(ev.speech_started(conn._speech_start_ms, conn._speech_item))


def vad_speech_stopped(conn: MockConnection, ms: int) -> None:
    item_id = conn._speech_item or conn.new_item_id()
    conn._speech_item = None
    conn.send(ev.speech_stopped(ms, item_id))
    commit(conn, item_id)
    if conn.behaviour.vad_create_response and not conn.active_responses:
        conn.start_reply(None, None)


def commit(conn: MockConnection, item_id: str) -> None:
    b = conn.behaviour
    previous = conn._last_item_id
    conn.send(ev.committed(item_id, previous))
    item = ev.user_audio_item(item_id)
    conn.items[item_id] = item
    conn._last_item_id = item_id
    conn.input_buffer_bytes = 0
    conn.send(ev.conversation_item_added(item, previous))
    conn.send(ev.conversation_item_done(item, previous))
    transcribe = b.transcribe
    if transcribe is None:
        audio = conn.session.get("audio")
        audio_in = audio.get("input") if isinstance(audio, dict) else None
        transcribe = isinstance(audio_in, dict) and bool(audio_in.get("transcription"))
    if transcribe:
        text = b.user_transcript
        for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
            if piece:
                conn.send(ev.input_transcription_delta(item_id, piece))
        conn.send(ev.input_transcription_completed(item_id, text))
        conn._pending_user_text = text


def on_commit(conn: MockConnection, event: Event) -> None:
    if not conn.behaviour.answer_control:
        return
    if conn.input_buffer_bytes < MIN_COMMIT_BYTES:
        ms = conn.input_buffer_bytes / BYTES_PER_MS
        conn.reject(
            event,
            "input_audio_buffer_commit_empty",
            "Error committing input audio buffer: buffer too small. Expected at least "
            f"100ms of audio, but buffer only has {ms:.2f}ms of audio.",
        )
        return
    commit(conn, conn.new_item_id())


def on_clear(conn: MockConnection, event: Event) -> None:
    conn.input_buffer_bytes = 0
    if conn._vad is not None:
        conn._vad.reset()
    if conn.behaviour.answer_control:
        conn.send(ev.cleared())


def on_cancel(conn: MockConnection, event: Event) -> None:
    if not conn.behaviour.answer_control:
        return
    rid = event.get("response_id")
    target = rid if isinstance(rid, str) and rid in conn.active_responses else None
    if target is None and rid is None and conn.active_responses:
        target = next(reversed(conn.active_responses))
    if target is None:
        conn.reject(
            event,
            "response_cancel_not_active",
            "Cancellation failed: no active response found.",
        )
        return
    conn.cancel_response(target)


def on_truncate(conn: MockConnection, event: Event) -> None:
    if not conn.behaviour.answer_control:
        return
    item_id = event.get("item_id")
    if not isinstance(item_id, str) or item_id not in conn.items:
        conn.reject(
            event,
            "item_not_found",
            f"Item with item_id '{item_id}' not found.",
            param="item_id",
        )
        return
    end = event.get("audio_end_ms")
    idx = event.get("content_index")
    conn.send(
        ev.item_truncated(
            item_id, idx if isinstance(idx, int) else 0, end if isinstance(end, int) else 0
        )
    )


def on_delete(conn: MockConnection, event: Event) -> None:
    if not conn.behaviour.answer_control:
        return
    item_id = event.get("item_id")
    if not isinstance(item_id, str) or conn.items.pop(item_id, None) is None:
        conn.reject(
            event,
            "item_not_found",
            f"Item with item_id '{item_id}' not found.",
            param="item_id",
        )
        return
    conn.send(ev.item_deleted(item_id))


DEFAULTS: dict[str, Callable[[MockConnection, Event], None]] = {
    "session.update": on_session_update,
    "conversation.item.create": on_item_create,
    "response.create": on_response_create,
    "response.cancel": on_cancel,
    "input_audio_buffer.append": on_append,
    "input_audio_buffer.commit": on_commit,
    "input_audio_buffer.clear": on_clear,
    "conversation.item.truncate": on_truncate,
    "conversation.item.delete": on_delete,
}
