"""PROTOCOL.md §13.8 (context, greeting and History), P-85 ... P-91, at the Session level.
All of them are expressible with the sans-I/O Session.
"""

from __future__ import annotations

from typing import Any

from spec_examples import (
    P85_SETTINGS,
    P86_ITEMS,
    P86_SETTINGS,
    P90_CLIENT_TYPES,
    P91_FUNCTION_CALL_HISTORY,
)

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]


def _until_updated(settings: dict[str, Any], delay: float = 50, **opts: Any) -> H.Harness:
    h = H.Harness(**opts)
    h.start()
    h.open_upstream()
    h.client(settings)
    h.at(h.now + delay)
    return h


def test_p85_context_items() -> None:
    h = _until_updated(P85_SETTINGS)
    assert h.upstream_types() == ["session.update"]
    h.clear()
    h.upstream(H.session_updated())
    assert h.sent_upstream == [
        H.item_create(H.user_item("fp_1", "Hello")),
        H.item_create(H.assistant_item("fp_2", "Hi there!")),
        H.item_create(H.user_item("fp_3", "x")),
    ]
    last_item = max(i for i, e in enumerate(h.trace) if e[1] == "upstream")
    applied = h.trace_index(
        lambda e: e[1] == "client" and e[2][0] == "json" and e[2][1]["type"] == "SettingsApplied"
    )
    assert last_item < applied
    h.advance(1500)
    assert h.count_up("response.create") == 0
    assert h.client_json() == [{"type": "SettingsApplied"}]


def test_p86_context_with_function_calls() -> None:
    h = _until_updated(P86_SETTINGS)
    h.clear()
    h.upstream(H.session_updated())
    assert h.sent_upstream == [H.item_create(item) for item in P86_ITEMS]


GREETING = "Hello! How can I help you today?"


def test_p87_text_greeting() -> None:
    h = _until_updated(H.settings_with(greeting=GREETING), delay=0)
    h.clear()
    h.upstream(H.session_updated())
    assert h.client_json() == [
        {"type": "SettingsApplied"},
        {"type": "ConversationText", "role": "assistant", "content": GREETING},
        {"type": "History", "role": "assistant", "content": GREETING},
    ]
    h.advance(1500)
    assert h.count_client("AgentAudioDone") == 0
    assert h.count_up("conversation.item.create") == 0
    assert h.count_up("response.create") == 0


def test_p88_blank_greeting_and_greeting_off() -> None:
    for settings, opts in (
        (H.settings_with(greeting="   "), {}),
        (H.settings_with(greeting="Hi"), {"greeting": "off"}),
    ):
        h = H.Harness(**opts).ready(settings, clear=False)
        h.advance(1500)
        assert h.count_client("ConversationText") == 0, opts
        assert h.warnings() == []
        assert h.client_types() == ["Welcome", "SettingsApplied"]
        assert [m["type"] for m in h.all_upstream] == ["session.update"]


def test_p89_greeting_suppressed_by_context() -> None:
    h = _until_updated(
        H.settings_with(
            greeting="Welcome back!",
            context={"messages": [{"type": "History", "role": "user", "content": "Hello"}]},
        )
    )
    h.clear()
    h.upstream(H.session_updated())
    h.advance(1500)
    assert h.upstream_types() == ["conversation.item.create"]
    assert h.client_types() == ["SettingsApplied"]


def test_p90_spoken_greeting() -> None:
    h = H.Harness(greeting="spoken")
    pcm = H.A_bytes(960)
    h.script_responses(
        [
            H.response_created("resp_1"),
            H.audio_delta("resp_1", "item_g1", pcm),
            H.transcript_done("resp_1", "item_g1", "Hi!"),
            H.response_done("resp_1"),
        ]
    )
    h.ready(H.settings_with(greeting="Hi!"), clear=False)
    assert h.client_types(history=False) == P90_CLIENT_TYPES
    assert h.client_json("ConversationText") == [
        {"type": "ConversationText", "role": "assistant", "content": "Hi!"}
    ]
    assert h.client_binaries() == [pcm]
    assert h.up("response.create") == [H.scripted_create("Hi!")]
    assert h.count_up("conversation.item.create") == 0


def _p91(history: bool) -> H.Harness:
    settings = H.settings_with(think={"functions": [{"name": "get_time"}]})
    if not history:
        settings["flags"] = {"history": False}
    h = H.Harness().ready(settings)
    return H.run_p57(
        h,
        second=[
            H.response_created("resp_2"),
            H.transcript_done("resp_2", "item_a2", "It is noon."),
            H.response_done("resp_2"),
        ],
    )


def test_p91_history_messages() -> None:
    h = _p91(history=True)
    msgs = h.client_json()
    assert h.count_up("response.create") == 2

    def after(pred: Any) -> dict:
        i = next(k for k, m in enumerate(msgs) if pred(m))
        return msgs[i + 1]

    assert after(lambda m: m["type"] == "ConversationText" and m["role"] == "user") == {
        "type": "History",
        "role": "user",
        "content": "What time is it?",
    }
    i_req = next(k for k, m in enumerate(msgs) if m["type"] == "FunctionCallRequest")
    i_think = next(k for k, m in enumerate(msgs) if m["type"] == "AgentThinking" and k > i_req)
    assert msgs[i_think + 1] == P91_FUNCTION_CALL_HISTORY
    assert after(lambda m: m["type"] == "ConversationText" and m["role"] == "assistant") == {
        "type": "History",
        "role": "assistant",
        "content": "It is noon.",
    }
    assert sum(1 for m in msgs if m["type"] == "History") == 3

    h2 = _p91(history=False)
    assert h2.count_client("History") == 0
    assert h2.client_types() == [t for t in h.client_types() if t != "History"]
