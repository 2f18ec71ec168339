"""Fuzzing the Session with hostile upstream events (PROTOCOL.md §8.2, §10, §6).

Every server event type, with fields missing, of the wrong type, unknown extras, ids pointing at
live state, and byte-level corruption, is fed to a Session in one of several states (idle READY;
a response streaming with a function call and armed audio; an update and an item in flight).
The documented outcome: never the ``internal_error`` path; every P→C message in its §8.1 shape;
an ``Error``/``Warning`` only with the code of an upstream ``error`` event fed so far (§10.1:
``error.code``, or ``unknown``); no close except the one §10.3 documents (an error naming the
Settings' ``session.update``: 1008 with that code). Afterwards the connection still works: a
slot the fuzz left busy is freed by the sequencer timer (§6.7), an ``InjectUserMessage`` gets its
``response.create``, and the audio of a new response reaches the client byte for byte.
"""

from __future__ import annotations

from typing import Any

import harness as H
import pytest
from client_inputs import mutate
from client_inputs import paths as paths_of
from hardening_kit import (
    Harness,
    check_outcome,
    check_session_alive,
    count_example,
    deep_array,
    fuzz_settings,
    new_client_json,
)
from hypothesis import given
from hypothesis import strategies as st
from upstream_inputs import TEMPLATES, as_json, upstream_event

from fastproxy.messages import encode

SETUPS = ("ready", "streaming", "in_flight")
PCM_F = bytes((7 * k + 3) & 0xFF for k in range(960))


def make(setup: str) -> Harness:
    h = Harness()
    h.ready(H.S0, clear=False)
    if setup == "streaming":
        h.confirm_items = True
        h.client(H.inject_user("hi"))  # fp_1, Reply → response.create (fpe_3)
        h.upstream(H.response_created("resp_1"))
        h.upstream(H.audio_delta("resp_1", "item_a1", H.A_bytes(960)))
        h.upstream(H.function_call_done("resp_1", "call_1", "get_time"))
        h.confirm_items = False
    elif setup == "in_flight":
        h.client(H.update_prompt("Answer in French."))  # session.update (fpe_2), pending
        h.client(H.inject_user("hi"))  # fp_1, unconfirmed
    check_session_alive(h)
    return h


def _code(event: Any) -> str | None:
    """§10.1 ``C`` of an upstream ``error`` event, None if the event is no error."""
    if not isinstance(event, dict) or event.get("type") != "error":
        return None
    err = event.get("error")
    code = err.get("code") if isinstance(err, dict) else None
    return code if isinstance(code, str) and code else "unknown"


def feed(h: Harness, data: bytes, codes: set[str]) -> None:
    code = _code(as_json(data))
    if code is not None:
        codes.add(code)
    mark = len(h.all_client)
    h.upstream(data)
    check_outcome(h, mark, errors=codes, warnings=codes)
    if h.client_close is not None:
        close_code, reason = h.client_close
        assert close_code == 1008 and reason in codes, h.client_close  # §10.3, Settings


def follow_up(h: Harness) -> None:
    if h.client_close is not None:
        return
    h.confirm_items = True
    up_mark, mark = len(h.all_upstream), len(h.all_client)
    h.client(H.inject_user("follow-up"))
    check_session_alive(h)
    assert {"type": "ConversationText", "role": "user", "content": "follow-up"} in (
        new_client_json(h, mark)
    )
    creates = [
        i
        for i, e in enumerate(h.all_upstream[up_mark:], up_mark)
        if e["type"] == "conversation.item.create"
    ]
    assert creates, h.all_upstream[up_mark:]
    for _ in range(16):
        if any(e["type"] == "response.create" for e in h.all_upstream[creates[0] :]):
            break
        h.advance(h.options.sequencer_timeout_ms)
    else:
        raise AssertionError(f"no response.create after the follow-up: {h.upstream_types()}")
    # the audio of a fresh response reaches the client unchanged (passthrough, §9.4)
    binaries = len(h.client_binaries())
    h.upstream(H.response_created("resp_follow"))
    h.upstream(H.audio_delta("resp_follow", "item_follow", PCM_F))
    h.upstream(H.audio_delta("resp_follow", "item_follow", PCM_F))
    assert h.client_binaries()[binaries:] == [PCM_F, PCM_F]
    check_session_alive(h)


@fuzz_settings(400)
@given(setup=st.sampled_from(SETUPS), events=st.lists(upstream_event(), min_size=1, max_size=6))
def test_fuzz_upstream_events(setup: str, events: list[bytes]) -> None:
    count_example("upstream events (Session)")
    h = make(setup)
    codes: set[str] = set()
    for data in events:
        feed(h, data, codes)
        if h.upstream_closed:
            break
    follow_up(h)


@pytest.mark.parametrize("setup", SETUPS)
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_event_type_without_each_field(setup: str, name: str) -> None:
    """Deterministic sweep: every event type, valid, then with each top-level field removed or
    set to a value of each JSON type, and each nested field (to depth 3: ``response.status``,
    ``error.code``, ``item.id`` ...) removed or set to null, an array or an object."""
    template = TEMPLATES[name]
    variants = [template]
    for key in template:
        if key != "type":
            variants.append({k: v for k, v in template.items() if k != key})
            for value in (None, [1, {}], 1e300, "\u0000", {"type": "x"}, True, -1):
                variants.append({**template, key: value})
    for path in paths_of(template):
        if 1 < len(path) <= 3:
            variants.append(mutate(template, path, "delete"))
            for value in (None, [1, {}], {"type": "x"}):
                variants.append(mutate(template, path, "set", value))
    for variant in variants:
        h = make(setup)
        codes: set[str] = set()
        feed(h, encode(variant), codes)
        follow_up(h)
    h = make(setup)
    feed(h, b'{"type":"' + name.encode() + b'","x":' + deep_array(3000).encode() + b"}", set())
    follow_up(h)
    count_example("upstream events, every type x every field (sweep)")


def test_deeply_nested_upstream_event_is_invalid_json() -> None:
    """Found by fuzzing: msgspec's RecursionError escaped the upstream decoder
    (``internal_error``); now violation ``invalid_upstream_json``, nothing to the client."""
    h = make("streaming")
    mark = len(h.all_client)
    h.upstream(b'{"type":"response.done","response":' + deep_array(5000).encode() + b"}")
    assert new_client_json(h, mark) == []
    assert h.stats.violations["invalid_upstream_json"] == 1
    follow_up(h)


def test_invalid_utf8_in_an_ignored_field_is_invalid_json() -> None:
    """Found by fuzzing: an upstream ``error`` with invalid UTF-8 in an unknown key was decoded
    and forwarded; a text message that is not UTF-8 is not JSON (§8.2: invalid_upstream_json)."""
    h = make("ready")
    mark = len(h.all_client)
    h.upstream(b'{"type":"error","error":{"code":"invalid_value","message":"m"},"\x80":1}')
    h.upstream(b'{"type":"response.created","response":{"id":"resp_9"},"x":"\xff"}')
    assert new_client_json(h, mark) == []
    assert h.stats.violations["invalid_upstream_json"] == 2
    assert not h.session.s.active
    follow_up(h)


@pytest.mark.parametrize("status", [[], {}, ["completed"], {"a": 1}, None, 7, "weird"])
def test_response_done_with_a_status_of_any_type(status: Any) -> None:
    """Found by the long fuzz run: ``response.done`` whose ``response.status`` was a JSON array
    or object hit ``status in COMPLETED_STATUSES`` (a frozenset) with an unhashable value and
    cost the connection an ``internal_error``. Any non-status value now counts as turn
    completed ``incomplete``; the slot frees as usual (T13)."""
    h = make("streaming")
    event = {"type": "response.done", "response": {"id": "resp_1", "status": status}}
    h.upstream(encode(event))
    check_session_alive(h)
    assert h.stats.turns_completed == {"incomplete": 1}
    assert not h.session.s.active
    follow_up(h)
