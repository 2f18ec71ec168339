"""Builders for OpenAI Realtime (GA) server events, in the shapes the real API sends.

Every builder returns a fresh ``dict`` ready for :meth:`MockConnection.send`, which stamps an
``event_id`` on it (the real API puts one on every server event). The required fields follow
PROTOCOL.md §13.1 H4 exactly (for example an audio delta is ``type``, ``response_id``,
``item_id``, ``output_index``, ``content_index``, ``delta``); the extra fields the real API adds
(``object``, ``status_details``, ``usage``, ``conversation_id``, …) are copied from
``/work/shared/traces`` so a consumer that ignores unknown keys sees realistic traffic.

Nothing here does I/O or keeps state; ids are passed in.
"""

from __future__ import annotations

import base64
from typing import Any

Event = dict[str, Any]

DEFAULT_VOICE = "marin"
CONVERSATION_ID = "conv_mock0000000001"
PCM_FORMAT: dict[str, Any] = {"type": "audio/pcm", "rate": 24000}


# --------------------------------------------------------------------------- session


def session_object(session_id: str = "sess_1", *, model: str = "gpt-realtime") -> dict[str, Any]:
    """The session object of ``session.created`` (defaults as in the trace)."""
    return {
        "object": "realtime.session",
        "type": "realtime",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "audio": {
            "input": {
                "format": dict(PCM_FORMAT),
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": dict(PCM_FORMAT), "voice": DEFAULT_VOICE, "speed": 1.0},
        },
        "expires_at": 1795315600,
    }


def session_created(session: dict[str, Any] | None = None) -> Event:
    """``session.created``; H2's minimal form is ``session_created({"id": "sess_1"})``."""
    return {"type": "session.created", "session": session or session_object()}


def session_updated(session: dict[str, Any] | None = None) -> Event:
    """``session.updated``; H2's minimal form is the default ``{"type": "realtime"}``."""
    return {"type": "session.updated", "session": session or {"type": "realtime"}}


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated recursively with ``update`` (nested dicts merge, other values replace)."""
    out = dict(base)
    for key, value in update.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- items


def message_item(
    item_id: str,
    role: str = "assistant",
    content: list[dict[str, Any]] | None = None,
    *,
    status: str = "completed",
) -> dict[str, Any]:
    """A ``realtime.item`` of type ``message``."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": status,
        "role": role,
        "content": content if content is not None else [],
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str = "", *, status: str = "completed"
) -> dict[str, Any]:
    """A ``realtime.item`` of type ``function_call``."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "function_call",
        "status": status,
        "name": name,
        "call_id": call_id,
        "arguments": arguments,
    }


def confirmed_item(item: dict[str, Any]) -> dict[str, Any]:
    """A client-created item as the API echoes it back: same fields plus ``object`` (and
    ``status`` for messages)."""
    out = {"id": item.get("id"), "object": "realtime.item"}
    out.update(item)
    if out.get("type") == "message":
        out.setdefault("status", "completed")
    return out


def conversation_item_added(item: dict[str, Any], previous_item_id: str | None = None) -> Event:
    return {"type": "conversation.item.added", "previous_item_id": previous_item_id, "item": item}


def conversation_item_done(item: dict[str, Any], previous_item_id: str | None = None) -> Event:
    return {"type": "conversation.item.done", "previous_item_id": previous_item_id, "item": item}


def conversation_item_created(item: dict[str, Any], previous_item_id: str | None = None) -> Event:
    """The beta-era name, still listed in §8.2 row 4."""
    return {
        "type": "conversation.item.created",
        "previous_item_id": previous_item_id,
        "item": item,
    }


def item_truncated(item_id: str, content_index: int = 0, audio_end_ms: int = 0) -> Event:
    return {
        "type": "conversation.item.truncated",
        "item_id": item_id,
        "content_index": content_index,
        "audio_end_ms": audio_end_ms,
    }


def item_deleted(item_id: str) -> Event:
    return {"type": "conversation.item.deleted", "item_id": item_id}


# --------------------------------------------------------------------------- responses


def usage_block(input_tokens: int = 480, output_tokens: int = 132) -> dict[str, Any]:
    """A ``response.done`` usage block; the text/audio split is a fixed plausible ratio."""
    out_text = max(1, output_tokens // 4)
    in_audio = input_tokens // 3
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {
            "text_tokens": input_tokens - in_audio,
            "audio_tokens": in_audio,
            "cached_tokens": 0,
        },
        "output_token_details": {"text_tokens": out_text, "audio_tokens": output_tokens - out_text},
    }


def response_object(
    response_id: str,
    status: str = "in_progress",
    *,
    output: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
    status_details: dict[str, Any] | None = None,
    output_modalities: list[str] | None = None,
    conversation_id: str | None = CONVERSATION_ID,
    voice: str = DEFAULT_VOICE,
) -> dict[str, Any]:
    """A ``realtime.response`` object (``response.created`` / ``response.done``)."""
    return {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "status_details": status_details,
        "output": output if output is not None else [],
        "conversation_id": conversation_id,
        "output_modalities": output_modalities or ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": dict(PCM_FORMAT), "voice": voice}},
        "usage": usage,
        "metadata": None,
    }


def response_created(response_id: str, status: str = "in_progress", **fields: Any) -> Event:
    """``response.created`` (H4: ``{"response":{"id":R,"status":"in_progress"}}`` plus the
    real API's other fields; ``fields`` go to :func:`response_object`)."""
    return {"type": "response.created", "response": response_object(response_id, status, **fields)}


def response_done(
    response_id: str,
    status: str = "completed",
    *,
    output: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
    status_details: dict[str, Any] | None = None,
    **fields: Any,
) -> Event:
    """``response.done``. A ``cancelled`` / ``incomplete`` / ``failed`` status gets a matching
    ``status_details`` unless one is given; ``usage`` defaults to a plausible block."""
    if status_details is None and status == "cancelled":
        status_details = {"type": "cancelled", "reason": "client_cancelled"}
    elif status_details is None and status == "incomplete":
        status_details = {"type": "incomplete", "reason": "max_output_tokens"}
    elif status_details is None and status == "failed":
        status_details = {"type": "failed", "error": {"type": "server_error", "code": None}}
    return {
        "type": "response.done",
        "response": response_object(
            response_id,
            status,
            output=output,
            usage=usage if usage is not None else usage_block(),
            status_details=status_details,
            **fields,
        ),
    }


def output_item_added(response_id: str, item: dict[str, Any], output_index: int = 0) -> Event:
    return {
        "type": "response.output_item.added",
        "response_id": response_id,
        "output_index": output_index,
        "item": item,
    }


def output_item_done(response_id: str, item: dict[str, Any], output_index: int = 0) -> Event:
    return {
        "type": "response.output_item.done",
        "response_id": response_id,
        "output_index": output_index,
        "item": item,
    }


def _part_event(
    type_: str, response_id: str, item_id: str, output_index: int, content_index: int
) -> Event:
    return {
        "type": type_,
        "response_id": response_id,
        "item_id": item_id,
        "output_index": output_index,
        "content_index": content_index,
    }


def content_part_added(
    response_id: str,
    item_id: str,
    part: dict[str, Any] | None = None,
    output_index: int = 0,
    content_index: int = 0,
) -> Event:
    ev = _part_event(
        "response.content_part.added", response_id, item_id, output_index, content_index
    )
    ev["part"] = part if part is not None else {"type": "audio", "transcript": ""}
    return ev


def content_part_done(
    response_id: str,
    item_id: str,
    part: dict[str, Any],
    output_index: int = 0,
    content_index: int = 0,
) -> Event:
    ev = _part_event(
        "response.content_part.done", response_id, item_id, output_index, content_index
    )
    ev["part"] = part
    return ev


def audio_delta(
    response_id: str,
    item_id: str,
    pcm: bytes | None = None,
    *,
    b64: str | None = None,
    output_index: int = 0,
    content_index: int = 0,
) -> Event:
    """``response.output_audio.delta`` (H4 shape). Pass raw ``pcm`` bytes, or ``b64`` verbatim
    (e.g. ``""`` or invalid base64 for negative tests)."""
    ev = _part_event(
        "response.output_audio.delta", response_id, item_id, output_index, content_index
    )
    ev["delta"] = b64 if b64 is not None else base64.b64encode(pcm or b"").decode("ascii")
    return ev


def audio_done(
    response_id: str, item_id: str, output_index: int = 0, content_index: int = 0
) -> Event:
    return _part_event(
        "response.output_audio.done", response_id, item_id, output_index, content_index
    )


def transcript_delta(
    response_id: str, item_id: str, delta: str, output_index: int = 0, content_index: int = 0
) -> Event:
    ev = _part_event(
        "response.output_audio_transcript.delta", response_id, item_id, output_index, content_index
    )
    ev["delta"] = delta
    return ev


def transcript_done(
    response_id: str, item_id: str, transcript: str, output_index: int = 0, content_index: int = 0
) -> Event:
    ev = _part_event(
        "response.output_audio_transcript.done", response_id, item_id, output_index, content_index
    )
    ev["transcript"] = transcript
    return ev


def text_delta(
    response_id: str, item_id: str, delta: str, output_index: int = 0, content_index: int = 0
) -> Event:
    ev = _part_event(
        "response.output_text.delta", response_id, item_id, output_index, content_index
    )
    ev["delta"] = delta
    return ev


def text_done(
    response_id: str, item_id: str, text: str, output_index: int = 0, content_index: int = 0
) -> Event:
    ev = _part_event("response.output_text.done", response_id, item_id, output_index, content_index)
    ev["text"] = text
    return ev


def function_call_arguments_delta(
    response_id: str, item_id: str, call_id: str, delta: str, output_index: int = 0
) -> Event:
    return {
        "type": "response.function_call_arguments.delta",
        "response_id": response_id,
        "item_id": item_id,
        "output_index": output_index,
        "call_id": call_id,
        "delta": delta,
    }


def function_call_done(
    response_id: str,
    item_id: str,
    call_id: str,
    name: str,
    arguments: str = "{}",
    output_index: int = 0,
) -> Event:
    """``response.function_call_arguments.done`` (the event that carries a function call)."""
    return {
        "type": "response.function_call_arguments.done",
        "response_id": response_id,
        "item_id": item_id,
        "output_index": output_index,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


function_call_arguments_done = function_call_done


# --------------------------------------------------------------------------- input audio


def speech_started(audio_start_ms: int, item_id: str) -> Event:
    return {
        "type": "input_audio_buffer.speech_started",
        "audio_start_ms": audio_start_ms,
        "item_id": item_id,
    }


def speech_stopped(audio_end_ms: int, item_id: str) -> Event:
    return {
        "type": "input_audio_buffer.speech_stopped",
        "audio_end_ms": audio_end_ms,
        "item_id": item_id,
    }


def committed(item_id: str, previous_item_id: str | None = None) -> Event:
    return {
        "type": "input_audio_buffer.committed",
        "previous_item_id": previous_item_id,
        "item_id": item_id,
    }


def cleared() -> Event:
    return {"type": "input_audio_buffer.cleared"}


def timeout_triggered(audio_start_ms: int, audio_end_ms: int, item_id: str) -> Event:
    return {
        "type": "input_audio_buffer.timeout_triggered",
        "audio_start_ms": audio_start_ms,
        "audio_end_ms": audio_end_ms,
        "item_id": item_id,
    }


def user_audio_item(item_id: str, transcript: str | None = None) -> dict[str, Any]:
    """The user message item that a commit creates."""
    return message_item(item_id, "user", [{"type": "input_audio", "transcript": transcript}])


def input_transcription_delta(item_id: str, delta: str, content_index: int = 0) -> Event:
    return {
        "type": "conversation.item.input_audio_transcription.delta",
        "item_id": item_id,
        "content_index": content_index,
        "delta": delta,
    }


def input_transcription_completed(item_id: str, transcript: str, content_index: int = 0) -> Event:
    words = max(1, len(transcript.split()))
    return {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": item_id,
        "content_index": content_index,
        "transcript": transcript,
        "usage": {
            "type": "tokens",
            "total_tokens": 29 + 2 * words,
            "input_tokens": 29,
            "input_token_details": {"text_tokens": 0, "audio_tokens": 29},
            "output_tokens": 2 * words,
        },
    }


# --------------------------------------------------------------------------- misc


def error(
    code: str | None,
    message: str,
    event_id: str | None = None,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
) -> Event:
    """An ``error`` event; ``event_id`` names the client event it answers (§10.3)."""
    return {
        "type": "error",
        "error": {
            "type": type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        },
    }


def active_response_error(event_id: str | None = None) -> Event:
    """The error the API sends for a ``response.create`` while a response is active."""
    return error(
        "conversation_already_has_active_response",
        "Conversation already has an active response in progress.",
        event_id,
    )


def rate_limits_updated() -> Event:
    return {
        "type": "rate_limits.updated",
        "rate_limits": [
            {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
            {"name": "tokens", "limit": 800000, "remaining": 799388, "reset_seconds": 0.045},
        ],
    }
