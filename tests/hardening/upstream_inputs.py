"""Hostile upstream events for the fuzz targets (PROTOCOL.md §8.2, §10).

One realistic GA template per server event type of the §8.2 table (built with the mock's own
event builders), plus unknown types. ``upstream_event`` draws a template and deletes fields,
gives them values of the wrong JSON type, adds unknown fields, or points ids at the state the
test set up (``resp_1``, ``fp_1``, ``call_1``, the proxy's own ``fpe_<n>`` event ids) so that
correlation paths (§6.6, §10.3) are exercised too; some events are corrupted at the byte level.
"""

from __future__ import annotations

import json
from typing import Any

from client_inputs import JSON_VALUES, PLACEHOLDER, RAW_TOKENS, WRONG_VALUES, encode_with_raw
from client_inputs import mutate as mutate_at
from client_inputs import paths as paths_of
from hypothesis import strategies as st

from fastproxy.messages import KNOWN_UPSTREAM_TYPES
from fastproxy.testing import events as ev

PCM = bytes(range(256)) * 4  # 1024 bytes, 512 samples


def _templates() -> dict[str, dict[str, Any]]:
    item = ev.message_item("item_a1", "assistant", "Hi")
    call_item = ev.function_call_item("item_f1", "call_1", "get_time", "{}")
    t: dict[str, dict[str, Any]] = {
        "session.created": ev.session_created(ev.session_object()),
        "session.updated": ev.session_updated(ev.session_object()),
        "conversation.created": {
            "type": "conversation.created",
            "conversation": {"id": "conv_1", "object": "realtime.conversation"},
        },
        "conversation.item.created": ev.conversation_item_created(
            {"id": "fp_1", "type": "message", "role": "user", "content": []}
        ),
        "conversation.item.added": ev.conversation_item_added(
            {"id": "fp_1", "type": "message", "role": "user", "content": []}
        ),
        "conversation.item.done": ev.conversation_item_done(dict(item)),
        "conversation.item.retrieved": {"type": "conversation.item.retrieved", "item": item},
        "conversation.item.truncated": ev.item_truncated("item_a1", 0, 120),
        "conversation.item.deleted": ev.item_deleted("item_a1"),
        "conversation.item.input_audio_transcription.delta": ev.input_transcription_delta(
            "item_u1", "hel"
        ),
        "conversation.item.input_audio_transcription.completed": (
            ev.input_transcription_completed("item_u1", "hello")
        ),
        "conversation.item.input_audio_transcription.failed": {
            "type": "conversation.item.input_audio_transcription.failed",
            "item_id": "item_u1",
            "content_index": 0,
            "error": {"type": "transcription_error", "code": "x", "message": "m"},
        },
        "conversation.item.input_audio_transcription.segment": {
            "type": "conversation.item.input_audio_transcription.segment",
            "item_id": "item_u1",
            "content_index": 0,
            "text": "hello",
            "id": "seg_1",
            "speaker": "A",
            "start": 0.0,
            "end": 1.0,
        },
        "input_audio_buffer.committed": ev.committed("item_u1"),
        "input_audio_buffer.cleared": ev.cleared(),
        "input_audio_buffer.speech_started": ev.speech_started(100, "item_u1"),
        "input_audio_buffer.speech_stopped": {
            **ev.speech_stopped(900, "item_u1"),
            "channel": [0, 1],
            "last_word_end": 0.85,
        },
        "input_audio_buffer.timeout_triggered": ev.timeout_triggered(0, 900, "item_u1"),
        "input_audio_buffer.dtmf_event_received": {
            "type": "input_audio_buffer.dtmf_event_received",
            "event": "5",
            "received_at": 1,
        },
        "response.created": ev.response_created("resp_1"),
        "response.done": ev.response_done("resp_1"),
        "response.output_item.added": ev.output_item_added("resp_1", call_item),
        "response.output_item.done": ev.output_item_done("resp_1", item),
        "response.content_part.added": ev.content_part_added("resp_1", "item_a1"),
        "response.content_part.done": ev.content_part_done(
            "resp_1", "item_a1", {"type": "audio", "transcript": "Hi"}
        ),
        "response.output_text.delta": ev.text_delta("resp_1", "item_a1", "Hi"),
        "response.output_text.done": ev.text_done("resp_1", "item_a1", "Hi there."),
        "response.output_audio.delta": ev.audio_delta("resp_1", "item_a1", PCM),
        "response.output_audio.done": ev.audio_done("resp_1", "item_a1"),
        "response.output_audio_transcript.delta": ev.transcript_delta("resp_1", "item_a1", "Hi"),
        "response.output_audio_transcript.done": ev.transcript_done(
            "resp_1", "item_a1", "Hi there."
        ),
        "response.function_call_arguments.delta": ev.function_call_arguments_delta(
            "resp_1", "item_f1", "call_1", "{"
        ),
        "response.function_call_arguments.done": ev.function_call_done(
            "resp_1", "item_f1", "call_1", "get_time", "{}"
        ),
        "error": ev.error("invalid_value", "Bad thing", "fpe_2"),
        "rate_limits.updated": ev.rate_limits_updated(),
        "x.unknown_event": {"type": "x.unknown_event", "payload": {"a": 1}},
        "response.something_new": {"type": "response.something_new", "response_id": "resp_1"},
    }
    for name in KNOWN_UPSTREAM_TYPES - set(t):
        t[name] = {"type": name, "response_id": "resp_1", "item_id": "item_a1", "output_index": 0}
    for name, event in t.items():
        assert event["type"] == name, (name, event)
        event.pop("event_id", None)
        event["event_id"] = "event_1"
    return t


TEMPLATES = _templates()
IDS = [
    "resp_1",
    "resp_2",
    "resp_x",
    "fp_1",
    "fp_2",
    "fp_3",
    "item_a1",
    "item_f1",
    "call_1",
    "call_2",
    "fpe_1",
    "fpe_2",
    "fpe_3",
    "fpe_4",
    "fpe_5",
    "",
    " ",
]
ID_KEYS = ("id", "response_id", "item_id", "call_id", "event_id", "previous_item_id")
CODES = [
    "invalid_value",
    "conversation_already_has_active_response",
    "session_expired",
    "idle_timeout",
    "session_max_duration",
    "",
    None,
    7,
]


@st.composite
def upstream_event(draw: Any) -> bytes:
    """One hostile (or valid) upstream text message."""
    name = draw(st.sampled_from(sorted(TEMPLATES)))
    obj: dict[str, Any] = TEMPLATES[name]
    raw: bytes | None = None
    for _ in range(draw(st.integers(0, 3))):
        candidates = [p for p in paths_of(obj) if p != ("type",)] or paths_of(obj)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        op = draw(st.sampled_from(["set", "set", "delete", "extra", "id", "code"]))
        if op == "id":
            key = path[-1]
            if key in ID_KEYS:
                obj = mutate_at(obj, path, "set", draw(st.sampled_from(IDS)))
            continue
        if op == "code":
            if name == "error" and isinstance(obj.get("error"), dict):
                obj = mutate_at(obj, ("error", "code"), "set", draw(st.sampled_from(CODES)))
            continue
        kind = draw(st.sampled_from(["wrong", "json", "raw"]))
        if kind == "wrong":
            new: Any = draw(st.sampled_from(WRONG_VALUES))
        elif kind == "json":
            new = draw(JSON_VALUES)
        else:
            new, raw = PLACEHOLDER, draw(st.sampled_from(RAW_TOKENS))
        obj = mutate_at(obj, path, op, new)
    data = encode_with_raw(obj, raw)
    corrupt = draw(st.integers(0, 9))
    if corrupt == 0 and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1 :]
    elif corrupt == 1:
        data = data[: draw(st.integers(0, len(data)))]
    return data


def as_json(data: bytes) -> Any:
    """The parsed event, or None if it is not JSON (used to derive the expected codes)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None
