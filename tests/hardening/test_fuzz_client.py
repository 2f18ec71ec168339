"""Fuzzing the Session with hostile client text messages (PROTOCOL.md §2.2, §3.3, §4.1, §7.1).

Every input gets "the documented outcome, or a documented error — nothing else": only the
Errors/Warnings a client message can cause (``invalid_client_json``,
``disallowed_client_message_type``, ``settings_field_ignored``, and for a first ``Settings`` or a
full held queue ``unsupported_audio_format`` / ``client_queue_overflow`` with close 1008), every
P→C message in its exact §8.1 shape, never the Session's ``internal_error`` path — and afterwards
the connection still reaches READY and handles a valid ``InjectUserMessage`` and audio.
"""

from __future__ import annotations

import json
import math
from typing import Any

import harness as H
import pytest
from client_inputs import (
    FULL_SETTINGS,
    PLACEHOLDER,
    RAW_TOKENS,
    SETTINGS_PATHS,
    TEMPLATES,
    WRONG_VALUES,
    client_text,
    encode_with_raw,
    mutate,
    paths,
)
from hardening_kit import (
    CLIENT_CLOSES,
    CLIENT_INPUT_ERRORS,
    CLIENT_INPUT_WARNINGS,
    Harness,
    check_outcome,
    check_session_alive,
    count_example,
    deep_array,
    deep_object,
    fuzz_settings,
    new_client_json,
)
from hypothesis import given
from hypothesis import strategies as st

from fastproxy import messages
from fastproxy.messages import CLIENT_TYPES, MAX_JSON_DEPTH

PHASES = ("connecting", "open", "ready")


def make(phase: str, **options: Any) -> H.Harness:
    h = Harness(**options)
    if phase == "ready":
        h.ready(clear=False)
    else:
        h.start()
        if phase == "open":
            h.open_upstream()
    return h


def expected_refusal(data: bytes) -> str | None:
    """The §7.1 classification an independent strict parser gives ``data``, when it is one of
    the two refusals: ``invalid_client_json`` (not UTF-8, not JSON, a number out of range, a
    lone surrogate, nesting over the bound, not an object) or ``disallowed_client_message_type``
    (``type`` missing, not a string, or unknown). None: a known type (its fields decide)."""
    if not data:
        return None  # W2: ignored
    try:
        text = data.decode("utf-8")
        obj = json.loads(text, parse_constant=_reject, parse_float=_float)
        json.dumps(obj, ensure_ascii=False, default=str).encode("utf-8")  # lone surrogates
    except (ValueError, RecursionError):
        return "invalid_client_json"
    if not isinstance(obj, dict):
        return "invalid_client_json"
    type_name = obj.get("type")
    # Nesting over the bound and numbers beyond the double range (1e999) are refused wherever
    # the proxy decodes them; under a top-level key that the message type does not declare they
    # are ignored together with that key (J5).
    declared = _DECLARED.get(type_name) if isinstance(type_name, str) else None
    known = {k: v for k, v in obj.items() if declared is None or k in declared}
    if _depth(known) > MAX_JSON_DEPTH or _contains(known, _OutOfRange):
        return "invalid_client_json"
    if not isinstance(type_name, str) or type_name not in CLIENT_TYPES:
        return "disallowed_client_message_type"
    return None


class _OutOfRange:
    pass


_DECLARED = {
    name: {"type", *cls.__struct_fields__}
    for name, cls in (
        (m.__struct_config__.tag, m)
        for m in (
            messages.Settings,
            messages.UpdatePrompt,
            messages.UpdateSpeak,
            messages.InjectUserMessage,
            messages.InjectAgentMessage,
            messages.FunctionCallResponse,
            messages.KeepAlive,
        )
    )
}


def _reject(constant: str) -> Any:
    raise ValueError(constant)


def _float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else _OutOfRange()


def _contains(value: Any, cls: type) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, cls):
            return True
        if isinstance(item, dict):
            stack += item.values()
        elif isinstance(item, list):
            stack += item
    return False


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        stack += [(c, depth + 1) for c in children if isinstance(c, dict | list)]
    return deepest


def feed(h: H.Harness, data: bytes) -> list[dict[str, Any]]:
    """One client text message; checks its outcome; returns the client messages it caused."""
    mark = len(h.all_client)
    up_mark = len(h.all_upstream)
    held = len(h.session.s.held)
    h.client(data)
    out = check_outcome(h, mark, errors=CLIENT_INPUT_ERRORS, warnings=CLIENT_INPUT_WARNINGS)
    if h.client_close is not None:
        code, reason = h.client_close
        assert CLIENT_CLOSES.get(reason) == code, h.client_close
    refusal = expected_refusal(data)
    if refusal is not None:  # §7.1: one Error; no state change, nothing upstream
        assert [(p["type"], p.get("code")) for p in out] == [("Error", refusal)], (data, out)
        assert len(h.all_upstream) == up_mark and len(h.session.s.held) == held
    return out


def follow_up(h: H.Harness) -> None:
    """A valid continuation works: READY is reached, an inject gets its item, its echo and
    (once any slot the fuzz left busy has timed out) a response.create; audio is appended."""
    if h.client_close is not None:
        code, reason = h.client_close
        assert CLIENT_CLOSES.get(reason) == code, h.client_close
        errors = [p for k, p in h.all_client if k == "json" and p["type"] == "Error"]
        assert errors and errors[-1]["code"] == reason
        return
    s = h.session.s
    if h.session.phase != "READY":
        if not h.upstream_open:
            h.open_upstream()
        if not s.settings_seen:
            feed(h, json.dumps(H.S0).encode())
        if h.client_close is not None:  # the held queue may already be full
            assert h.client_close == (1008, "client_queue_overflow")
            return
        assert [p.purpose for p in s.pending_updates][:1] == ["settings"]
        mark = len(h.all_client)
        h.upstream(H.session_updated())
        check_session_alive(h)
        assert "SettingsApplied" in [p["type"] for p in new_client_json(h, mark)]
    assert h.session.phase == "READY"
    h.confirm_items = True
    up_mark, mark = len(h.all_upstream), len(h.all_client)
    h.client(H.inject_user("follow-up"))
    check_outcome(h, mark, errors=frozenset(), warnings=frozenset())
    created = [
        i
        for i, e in enumerate(h.all_upstream[up_mark:], up_mark)
        if e["type"] == "conversation.item.create"
        and e["item"].get("content") == [{"type": "input_text", "text": "follow-up"}]
    ]
    assert len(created) == 1, h.all_upstream[up_mark:]
    echo = new_client_json(h, mark)
    assert {"type": "ConversationText", "role": "user", "content": "follow-up"} in echo
    timeout = h.options.sequencer_timeout_ms
    for _ in range(16):  # each entry the fuzz left stuck costs at most two timeouts
        if any(e["type"] == "response.create" for e in h.all_upstream[created[0] :]):
            break
        h.advance(timeout)
    else:
        raise AssertionError(f"no response.create after the follow-up: {h.upstream_types()}")
    check_session_alive(h)
    up_mark = len(h.all_upstream)
    h.client_audio(H.A_bytes(1920))
    assert any(e["type"] == "input_audio_buffer.append" for e in h.all_upstream[up_mark:])
    check_session_alive(h)


@fuzz_settings(300)
@given(phase=st.sampled_from(PHASES), messages=st.lists(client_text(), min_size=1, max_size=4))
def test_fuzz_client_messages(phase: str, messages: list[bytes]) -> None:
    count_example("client text messages (Session)")
    h = make(phase)
    for data in messages:
        feed(h, data)
        if h.client_close is not None:
            break
    follow_up(h)


@fuzz_settings(150)
@given(
    path=st.sampled_from(SETTINGS_PATHS),
    op=st.sampled_from(["set", "delete", "extra"]),
    value=st.sampled_from([*WRONG_VALUES, PLACEHOLDER]),
    raw=st.sampled_from(RAW_TOKENS),
    phase=st.sampled_from(("connecting", "open")),
)
def test_fuzz_first_settings(path: Any, op: str, value: Any, raw: bytes, phase: str) -> None:
    """One change anywhere in a full first Settings: a session.update or a documented refusal."""
    count_example("first Settings, one field changed (Session)")
    h = make(phase)
    data = encode_with_raw(mutate(FULL_SETTINGS, path, op, value), raw)
    out = feed(h, data)
    _check_first_settings(h, out, path)
    follow_up(h)


def _check_first_settings(h: H.Harness, out: list[dict[str, Any]], path: Any) -> None:
    codes = [p["code"] for p in out if p["type"] in ("Error", "Warning")]
    s = h.session.s
    if h.client_close is not None:
        assert path[0] == "audio" and codes == ["unsupported_audio_format"], (path, out)
        assert h.upstream_close is None or h.upstream_close[0] == 1000
        return
    if "invalid_client_json" in codes or "disallowed_client_message_type" in codes:
        assert not s.settings_seen and len(codes) == 1
        return
    assert s.settings_seen
    update = s.update_to_send
    if update is None:
        updates = [e for e in h.all_upstream if e["type"] == "session.update"]
        assert len(updates) == 1
        update = updates[0]
    _check_session_object(update["session"])


_SESSION_KEYS = {
    "type",
    "model",
    "instructions",
    "tools",
    "tool_choice",
    "output_modalities",
    "max_output_tokens",
    "prompt",
    "audio",
}


def _check_session_object(session: dict[str, Any]) -> None:
    """§4.2/§4.3: only mapped keys, each of its documented type (never null, J3)."""
    assert set(session) <= _SESSION_KEYS, session.keys()
    assert session["type"] == "realtime"
    assert isinstance(session["model"], str) and session["model"].strip()
    assert isinstance(session["instructions"], str)
    for tool in session.get("tools", []):
        assert set(tool) <= {"type", "name", "description", "parameters"}
        assert tool["type"] == "function" and isinstance(tool["name"], str)
        assert isinstance(tool["parameters"], dict)
    if "max_output_tokens" in session:
        v = session["max_output_tokens"]
        assert v == "inf" or (isinstance(v, int) and 1 <= v <= 4096)
    audio = session["audio"]
    assert set(audio) == {"input", "output"}
    assert set(audio["input"]) == {"format", "transcription", "turn_detection"}
    assert set(audio["output"]) <= {"format", "voice", "speed"}
    detection = audio["input"]["turn_detection"]
    if "idle_timeout_ms" in detection:
        assert isinstance(detection["idle_timeout_ms"], int)
        assert 5000 <= detection["idle_timeout_ms"] <= 30000
    if "speed" in audio["output"]:
        assert 0.25 <= audio["output"]["speed"] <= 1.5


@pytest.mark.parametrize("path", SETTINGS_PATHS, ids=lambda p: ".".join(map(str, p)))
def test_every_settings_path_with_every_wrong_value(path: Any) -> None:
    """Deterministic sweep: every path of the full Settings × every wrong value and raw token."""
    for value in WRONG_VALUES:
        h = make("open")
        out = feed(h, encode_with_raw(mutate(FULL_SETTINGS, path, "set", value)))
        _check_first_settings(h, out, path)
        follow_up(h)
    for raw in RAW_TOKENS:
        h = make("open")
        out = feed(h, encode_with_raw(mutate(FULL_SETTINGS, path, "set", PLACEHOLDER), raw))
        _check_first_settings(h, out, path)
        follow_up(h)
    count_example("first Settings, every path x every wrong value (sweep)")


_OTHER_PATHS = [
    (name, path)
    for name, template in TEMPLATES.items()
    if name != "Settings"
    for path in paths(template)
]


@pytest.mark.parametrize("phase", ["open", "ready"])
@pytest.mark.parametrize(
    ("name", "path"), _OTHER_PATHS, ids=[f"{n}.{'.'.join(map(str, p))}" for n, p in _OTHER_PATHS]
)
def test_every_client_message_path_with_every_wrong_value(name: str, path: Any, phase: str) -> None:
    """Deterministic sweep: every field of every other client message type removed, or set to
    every wrong value and raw token, before and in READY."""
    template = TEMPLATES[name]
    variants = [encode_with_raw(mutate(template, path, "delete"))]
    variants += [encode_with_raw(mutate(template, path, "set", v)) for v in WRONG_VALUES]
    variants += [encode_with_raw(mutate(template, path, "set", PLACEHOLDER), r) for r in RAW_TOKENS]
    for data in variants:
        h = make(phase)
        if phase == "open":
            feed(h, json.dumps(H.S0).encode())
        feed(h, data)
        follow_up(h)
    count_example("other client messages, every path x every wrong value (sweep)")


# --------------------------------------------------------------------------------------------
# regressions found by the fuzz targets above


@pytest.mark.parametrize(
    "data",
    [
        b'{"type":"Settings","agent":' + deep_array(5000).encode() + b"}",
        b'{"type":"InjectUserMessage","content":"x","extra":' + deep_object(990).encode() + b"}",
        deep_array(100_000).encode(),
    ],
    ids=["settings", "inject", "bare-array"],
)
@pytest.mark.parametrize("phase", PHASES)
def test_json_nested_past_the_recursion_limit_is_invalid_json(data: bytes, phase: str) -> None:
    """Found by fuzzing: msgspec raised RecursionError, which escaped the decoder and cost the
    connection an ``internal_error``. Now ``invalid_client_json``; the connection stays up."""
    h = make(phase)
    out = feed(h, data)
    assert [p["code"] for p in out] == ["invalid_client_json"]
    assert "nested" in out[0]["description"]
    follow_up(h)


@pytest.mark.parametrize("depth", [129, 500, 980, 994])
def test_held_function_result_nested_near_the_limit(depth: int) -> None:
    """Found by fuzzing: a FunctionCallResponse whose ``content`` nested just under the
    interpreter's limit decoded when it arrived, was held, and failed to re-encode when it was
    replayed at READY from a deeper stack (``internal_error``). Nesting is now bounded at
    decode time (MAX_JSON_DEPTH), far from the limit: ``invalid_client_json`` on arrival."""
    h = make("open")
    feed(h, json.dumps(H.S0).encode())
    content = deep_array(depth).encode()
    out = feed(h, b'{"type":"FunctionCallResponse","id":"c1","content":' + content + b"}")
    assert [p["code"] for p in out] == ["invalid_client_json"]
    follow_up(h)


def test_nesting_up_to_the_bound_is_accepted() -> None:
    """The bound (128 levels, messages.MAX_JSON_DEPTH) leaves real tool schemas alone."""
    from fastproxy.messages import MAX_JSON_DEPTH

    h = make("ready")
    h.confirm_items = True
    content = deep_array(MAX_JSON_DEPTH - 1).encode()
    out = feed(h, b'{"type":"FunctionCallResponse","id":"c1","content":' + content + b"}")
    assert "Error" not in [p["type"] for p in out]
    outputs = [e for e in h.all_upstream if e["type"] == "conversation.item.create"]
    assert outputs[-1]["item"]["output"] == deep_array(MAX_JSON_DEPTH - 1)


@pytest.mark.parametrize(
    "data",
    [
        b'{"type":"KeepAlive","\x80":1}',
        b'{"type":"KeepAlive","x":"\xff"}',
        b'{"type":"Settings","tags":["\xff\xfe"]}',
        b'{"type":"InjectUserMessage","content":"ok","x":"\xed\xa0\x80"}',
        b'{"type":"UpdatePrompt","prompt":"ok","\xc0\xaf":0}',
    ],
)
def test_invalid_utf8_anywhere_is_invalid_json(data: bytes) -> None:
    """W8, found by fuzzing: msgspec checks UTF-8 only in the strings it keeps, so a message with
    invalid UTF-8 in an ignored key or value was processed as if it were valid (a Settings was
    even applied). Every such message is now ``invalid_client_json`` and changes nothing."""
    h = make("open")
    out = feed(h, data)
    assert [(p["type"], p["code"]) for p in out] == [("Error", "invalid_client_json")]
    assert "UTF-8" in out[0]["description"]
    assert not h.session.s.settings_seen
    assert [e["type"] for e in h.all_upstream] == []
    follow_up(h)
