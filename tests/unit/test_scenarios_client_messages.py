"""PROTOCOL.md §13.7 (client messages), P-71 ... P-84, P-124 and P-125, at the Session level.
All of them are expressible with the sans-I/O Session.
"""

from __future__ import annotations

import pytest
from spec_examples import (
    P74_CASES,
    P78_SESSION_UPDATE,
    P78_UPDATE_SPEAK,
    P79_WARNING,
    P125_TIMEOUT_TRIGGERED,
    SUPPORTED_CLIENT_TYPES,
    prompt_update,
)

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]


def _accepted_like_p81(h: H.Harness, x: str = "fp_1") -> None:
    assert h.up("conversation.item.create") == [H.item_create(H.assistant_item(x, "Please hold."))]
    assert h.up("response.create") == [H.scripted_create("Please hold.")]
    ups = h.upstream_types()
    assert ups.index("conversation.item.create") < ups.index("response.create")
    assert h.count_client("InjectionRefused") == 0
    assert h.client_json("ConversationText") == [
        {"type": "ConversationText", "role": "assistant", "content": "Please hold."}
    ]


def test_p71_keepalive() -> None:
    h = H.ready_harness()
    h.client({"type": "KeepAlive"})
    h.advance(500)
    assert h.sent_upstream == [] and h.to_client == []


def test_p72_unknown_types() -> None:
    h = H.ready_harness()
    h.client({"type": "CustomProbe", "foo": 1})
    h.client({"foo": 1})
    h.client({"type": "UpdateThink", "think": {}})
    assert h.sent_upstream == []
    errs = h.client_json()
    assert [e["type"] for e in errs] == ["Error"] * 3
    assert all(e["code"] == "disallowed_client_message_type" for e in errs)
    for e, name in zip(errs, ("CustomProbe", "(missing)", "UpdateThink"), strict=True):
        assert name in e["description"], e
        for t in SUPPORTED_CLIENT_TYPES:
            assert t in e["description"], (t, e)
    assert h.client_close is None


def test_p73_malformed_json() -> None:
    h = H.ready_harness()
    h.client('{"type":"Settings"')
    h.client("[1,2]")
    h.client(bytes([0xFF, 0xFE]))
    assert h.sent_upstream == []
    errs = h.client_json()
    assert [(e["type"], e["code"]) for e in errs] == [("Error", "invalid_client_json")] * 3
    h.clear()
    h.client(H.inject_user("Hi"))
    assert h.sent_upstream == [H.item_create(H.user_item("fp_1", "Hi"))]
    assert h.client_close is None


@pytest.mark.parametrize(("msg", "field"), P74_CASES)
def test_p74_invalid_fields(msg: dict, field: str) -> None:
    h = H.ready_harness()
    h.client(msg)
    assert h.sent_upstream == []
    errs = h.client_json()
    assert len(errs) == 1 and errs[0]["type"] == "Error"
    assert errs[0]["code"] == "invalid_client_json"
    assert field in errs[0]["description"]
    h.advance(500)
    assert h.sent_upstream == []
    assert h.client_close is None


def test_p75_inject_before_ready() -> None:
    h = H.Harness()
    h.start()
    h.open_upstream()
    h.client(H.inject_user("Before settings"))
    h.client(H.S0)
    h.at(99)
    assert h.upstream_types() == ["session.update"]
    assert h.client_types() == ["Welcome"]
    h.at(100)
    h.upstream(H.session_updated())
    assert h.client_types(history=False) == ["Welcome", "SettingsApplied", "ConversationText"]
    assert h.client_json("ConversationText") == [
        {"type": "ConversationText", "role": "user", "content": "Before settings"}
    ]
    assert h.sent_upstream[1:] == [H.item_create(H.user_item("fp_1", "Before settings"))]


def test_p76_update_prompt() -> None:
    h = H.ready_harness()
    h.client(H.update_prompt("Answer in French."))
    assert h.sent_upstream == [prompt_update("Be brief.\nAnswer in French.")]
    h.upstream(H.session_updated())
    assert h.client_json() == [{"type": "PromptUpdated"}]
    h.clear()
    h.client(H.update_prompt("Use short words."))
    assert h.sent_upstream == [prompt_update("Be brief.\nAnswer in French.\nUse short words.")]


def test_p77_update_prompt_rejected() -> None:
    h = H.ready_harness()
    h.client(H.update_prompt("X"))
    e = h.last_event_id("session.update")
    h.upstream(H.upstream_error("invalid_value", "Too long", e))
    assert h.client_json() == [
        {"type": "Warning", "description": "Too long", "code": "invalid_value"}
    ]
    h.advance(500)
    assert h.count_client("PromptUpdated") == 0
    h.clear()
    h.client(H.update_prompt("Y"))
    assert h.sent_upstream == [prompt_update("Be brief.\nY")]


def test_p78_update_speak() -> None:
    h = H.ready_harness()
    h.client(P78_UPDATE_SPEAK)
    assert h.sent_upstream == [P78_SESSION_UPDATE]
    h.upstream(H.session_updated())
    assert h.client_json() == [{"type": "SpeakUpdated"}]


def test_p79_update_speak_rejected() -> None:
    h = H.ready_harness()
    h.client(P78_UPDATE_SPEAK)
    assert h.sent_upstream == [P78_SESSION_UPDATE]
    e = h.last_event_id("session.update")
    h.upstream(H.upstream_error("cannot_update_voice", "Voice cannot be changed after audio", e))
    assert h.client_json() == [P79_WARNING]
    h.advance(500)
    assert h.count_client("SpeakUpdated") == 0


def test_p80_update_speak_without_a_voice() -> None:
    h = H.ready_harness()
    h.client(
        {
            "type": "UpdateSpeak",
            "speak": {"provider": {"type": "deepgram", "model": "aura-2-thalia-en"}},
        }
    )
    warns = h.client_json()
    assert len(warns) == 1 and warns[0]["type"] == "Warning"
    assert warns[0]["code"] == "settings_field_ignored"
    assert "speak.provider.voice" in warns[0]["description"]
    h.advance(500)
    assert h.sent_upstream == []
    assert h.count_client("SpeakUpdated") == 0


def test_p81_inject_agent_message() -> None:
    h = H.ready_harness()
    h.confirm_items = True
    h.script_responses([H.response_created("resp_1")])
    h.client(H.inject_agent("Please hold."))
    assert h.sent_upstream == [
        H.item_create(H.assistant_item("fp_1", "Please hold.")),
        H.scripted_create("Please hold."),
    ]
    assert h.client_json()[:2] == [
        {"type": "ConversationText", "role": "assistant", "content": "Please hold."},
        {"type": "History", "role": "assistant", "content": "Please hold."},
    ]
    h.upstream(H.transcript_done("resp_1", "item_s1", "Please hold."))
    assert h.count_client("ConversationText") == 1


def test_p82_injection_refused_while_busy() -> None:
    h = H.ready_harness()
    h.upstream(H.response_created("resp_1"))
    h.client(H.inject_agent("Hi"))
    msgs = h.client_json()
    assert len(msgs) == 1 and msgs[0]["type"] == "InjectionRefused"
    assert set(msgs[0]) == {"type", "message"}
    assert isinstance(msgs[0]["message"], str) and msgs[0]["message"]
    assert h.sent_upstream == []


def test_p83_injection_refused_while_the_user_speaks() -> None:
    h = H.ready_harness()
    h.confirm_items = True
    h.upstream(H.speech_started())
    h.client(H.inject_agent("Please hold."))
    assert h.count_client("InjectionRefused") == 1
    assert h.sent_upstream == []
    h.upstream(H.speech_stopped())
    h.clear()
    h.client(H.inject_agent("Please hold."))
    _accepted_like_p81(h)


def test_p84_function_call_response_content_forms() -> None:
    h = H.ready_harness()
    h.client({"type": "FunctionCallResponse", "id": "c1", "content": {"time": "14:32"}})
    h.client({"type": "FunctionCallResponse", "id": "c2"})
    h.client({"type": "FunctionCallResponse", "id": "c3", "content": None})
    assert h.up("conversation.item.create") == [
        H.item_create(
            {
                "id": "fp_1",
                "type": "function_call_output",
                "call_id": "c1",
                "output": '{"time":"14:32"}',
            }
        ),
        H.item_create(
            {"id": "fp_2", "type": "function_call_output", "call_id": "c2", "output": ""}
        ),
        H.item_create(
            {"id": "fp_3", "type": "function_call_output", "call_id": "c3", "output": ""}
        ),
    ]


def test_p124_rejected_prompt_leaves_the_instructions() -> None:
    h = H.ready_harness()
    h.client(H.update_prompt("X"))
    h.client(H.update_prompt("Y"))
    assert h.sent_upstream == [prompt_update("Be brief.\nX"), prompt_update("Be brief.\nX\nY")]
    e1 = h.upstream_ids[0]
    h.clear()
    h.upstream(H.upstream_error("invalid_value", "Too long", e1))
    assert h.sent_upstream == []  # no session.update in reaction to the rejection
    h.upstream(H.session_updated())
    assert h.client_json() == [
        {"type": "Warning", "description": "Too long", "code": "invalid_value"},
        {"type": "PromptUpdated"},
    ]
    assert h.sent_upstream == []
    h.client(H.update_prompt("Z"))
    assert h.sent_upstream == [prompt_update("Be brief.\nY\nZ")]


@pytest.mark.parametrize("ending", ["committed", "timeout_triggered", "response"])
def test_p125_lost_speech_stopped_does_not_block_injections(ending: str) -> None:
    h = H.ready_harness()
    h.confirm_items = True
    h.upstream(H.speech_started())
    if ending == "committed":
        h.upstream({"type": "input_audio_buffer.committed", "item_id": "item_u1"})
    elif ending == "timeout_triggered":
        h.upstream(P125_TIMEOUT_TRIGGERED)
    else:
        h.upstream(H.response_created("resp_1"))
        h.upstream(H.response_done("resp_1"))
    h.clear()
    h.client(H.inject_agent("Please hold."))
    _accepted_like_p81(h)
