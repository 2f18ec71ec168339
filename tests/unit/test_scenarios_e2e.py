"""PROTOCOL.md §13.13 (end to end), P-116 and P-117, at the Session level (the mock upstream is
the harness's confirming mock with scripted responses).
"""

from __future__ import annotations

from spec_examples import P116_ANSWER, P116_CLIENT_TYPES

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]


def test_p116_function_call_round_trip() -> None:
    h = H.run_p116()
    assert h.sent_upstream == [
        H.item_create(H.user_item("fp_1", "What time is it?")),
        H.RESPONSE_CREATE,
        H.item_create(
            {
                "id": "fp_2",
                "type": "function_call_output",
                "call_id": "call_1",
                "output": P116_ANSWER,
            }
        ),
        H.RESPONSE_CREATE,
    ]
    assert h.client_types(history=False) == P116_CLIENT_TYPES
    texts = h.client_json("ConversationText")
    assert texts == [
        {"type": "ConversationText", "role": "user", "content": "What time is it?"},
        {"type": "ConversationText", "role": "assistant", "content": "It is 12:00."},
    ]
    assert h.client_json("FunctionCallRequest") == [
        {
            "type": "FunctionCallRequest",
            "functions": [
                {"id": "call_1", "name": "get_current_time", "arguments": "{}", "client_side": True}
            ],
        }
    ]
    assert h.client_binaries() == [H.A_bytes(960)]


def test_p117_counted_events() -> None:
    h = H.run_p116()
    assert dict(+h.stats.turns_started) == {"reply": 1, "tool": 1}
    assert dict(+h.stats.turns_completed) == {"completed": 2}
    assert h.stats.barge_ins == 0
    assert h.total_violations() == 0
    assert sum(h.stats.upstream_errors.values()) == 0
    # after P-102
    b = H.run_p102_until_barge_in()
    b.at(750)
    b.upstream(H.audio_delta("resp_1", "item_a1", H.A_bytes(4800)))
    b.at(800)
    b.upstream({"type": "response.done", "response": {"id": "resp_1", "status": "cancelled"}})
    assert b.stats.barge_ins == 1
    assert dict(+b.stats.turns_completed) == {"cancelled": 1}
