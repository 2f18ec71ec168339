"""PROTOCOL.md §13.9 (upstream events), P-92 ... P-101, at the Session level.

The "warning log names the type" part of P-99 is read from the Session's ``Log`` actions (the
records the network layer writes); the rest is expressible as is.
"""

from __future__ import annotations

import pytest
from spec_examples import (
    P94_CLIENT_TYPES,
    P95_CLIENT_MESSAGES,
    P95_ITEM_ADDED,
    P97_SPEECH,
    P98_TRANSCRIPTION_COMPLETED,
    P98_USER_TEXT,
    p98_transcript,
)

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]


def test_p92_assistant_text_once_per_item() -> None:
    h = H.ready_harness()
    h.upstream(H.response_created("resp_1"))
    h.upstream(H.transcript_done("resp_1", "item_a1", "Hi, how can I help?"))
    h.upstream(H.text_done("resp_1", "item_a1", "Hi, how can I help?"))
    h.upstream(H.text_done("resp_1", "item_a2", "   "))
    assert h.client_json("ConversationText") == [
        {"type": "ConversationText", "role": "assistant", "content": "Hi, how can I help?"}
    ]
    # the slot stays active
    h.client(H.update_prompt("X"))
    assert h.count_up("session.update") == 0
    assert h.count_client("AgentAudioDone") == 0


def test_p93_agent_audio_and_agent_started_speaking() -> None:
    h = H.ready_harness()
    h.confirm_items = True
    h.script_responses([H.response_created("resp_1")])
    h.client(H.inject_user("Hello"))
    assert h.count_up("response.create") == 1
    h.clear()
    h.at(300)
    h.upstream(H.transcript_delta("resp_1", "item_a1", "Hel"))
    h.at(400)
    h.upstream(H.audio_delta("resp_1", "item_a1", "AAD//w=="))
    h.upstream(H.audio_delta("resp_1", "item_a1", ""))
    h.upstream(H.audio_delta("resp_1", "item_a1", bytes([1, 2, 3, 4])))
    assert h.client_types() == ["AgentStartedSpeaking", "<binary>", "<binary>"]
    assert h.client_binaries() == [bytes([0, 0, 0xFF, 0xFF]), bytes([1, 2, 3, 4])]
    ass = h.client_json("AgentStartedSpeaking")[0]
    assert set(ass) == {"type", "total_latency", "tts_latency", "ttt_latency"}
    for k in ("total_latency", "tts_latency", "ttt_latency"):
        assert isinstance(ass[k], int | float) and ass[k] >= 0
    assert ass["total_latency"] == pytest.approx(0.4, abs=0.0015)
    assert ass["ttt_latency"] == pytest.approx(0.3, abs=0.0015)
    assert abs(ass["total_latency"] - ass["ttt_latency"] - ass["tts_latency"]) <= 0.002


def test_p94_agent_audio_done_exactly_once_per_response() -> None:
    h = H.ready_harness(H.settings_with(think={"functions": [{"name": "get_time"}]}))
    h.upstream(H.response_created("resp_1"))
    h.upstream(H.audio_delta("resp_1", "item_a1", H.A_bytes(960)))
    s = h.upstream(H.audio_done("resp_1", "item_a1"))
    assert s.client_json() == [{"type": "AgentAudioDone"}]
    h.upstream(H.text_done("resp_1", "item_a1", "Hello."))
    s = h.upstream(H.response_done("resp_1"))
    assert s.client_json("AgentAudioDone") == []
    h.upstream(H.response_created("resp_2"))
    h.upstream(H.function_call_done("resp_2", "call_1", "get_time"))
    s = h.upstream(H.response_done("resp_2"))
    assert s.client_json("AgentAudioDone") == [{"type": "AgentAudioDone"}]
    h.upstream(H.response_created("resp_3"))
    h.upstream(H.text_done("resp_3", "item_a3", "Text only."))
    s = h.upstream(H.response_done("resp_3"))
    assert s.client_json("AgentAudioDone") == [{"type": "AgentAudioDone"}]
    types = h.client_types(history=False)
    assert types == P94_CLIENT_TYPES
    assert h.count_client("AgentStartedSpeaking") == 1


def test_p95_function_call_request_and_agent_thinking() -> None:
    h = H.ready_harness()
    h.upstream(H.response_created("resp_1"))
    h.upstream(P95_ITEM_ADDED)
    h.upstream(
        {
            "type": "response.function_call_arguments.done",
            "response_id": "resp_1",
            "item_id": "item_f1",
            "output_index": 0,
            "call_id": "call_1",
            "name": "get_current_time",
            "arguments": "{}",
        }
    )
    assert h.client_json() == P95_CLIENT_MESSAGES
    assert h.sent_upstream == []


def test_p96_malformed_function_call() -> None:
    h = H.ready_harness()
    h.upstream({"type": "response.function_call_arguments.done", "arguments": "{}"})
    assert h.count_client("FunctionCallRequest") == 0
    assert h.to_client == []
    assert h.stats.violations["malformed_upstream_event"] == 1


@pytest.mark.parametrize("extra", [True, False])
def test_p97_speech_events(extra: bool) -> None:
    h = H.ready_harness(extra_events=extra)
    for ev in P97_SPEECH:
        h.upstream(ev)
    expected = [{"type": "UserStartedSpeaking"}]
    if extra:
        expected += [
            {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 0},
            {"type": "UtteranceEnd", "channel": [0], "last_word_end": 1.5},
        ]
    assert h.client_json() == expected
    assert h.sent_upstream == []


@pytest.mark.parametrize("extra", [True, False])
def test_p98_input_transcription(extra: bool) -> None:
    h = H.ready_harness(extra_events=extra)
    for d in ("Hel", "lo ", "world"):
        h.upstream(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "item_id": "item_u1",
                "content_index": 0,
                "delta": d,
            }
        )
    h.upstream(P98_TRANSCRIPTION_COMPLETED)
    if extra:
        assert h.client_json() == [
            p98_transcript("Hel", False),
            p98_transcript("Hello ", False),
            p98_transcript("Hello world", False),
            p98_transcript("Hello world", True),
            *P98_USER_TEXT,
        ]
    else:
        assert h.client_json() == P98_USER_TEXT


def test_p99_log_only_and_unknown_events() -> None:
    h = H.ready_harness()
    for ev in (
        {
            "type": "rate_limits.updated",
            "event_id": "event_1",
            "rate_limits": [
                {"name": "requests", "limit": 1000, "remaining": 999, "reset_seconds": 0.06}
            ],
        },
        {
            "type": "conversation.created",
            "event_id": "event_2",
            "conversation": {"id": "conv_1", "object": "realtime.conversation"},
        },
        {"type": "input_audio_buffer.cleared", "event_id": "event_3"},
        {
            "type": "response.output_item.done",
            "event_id": "event_4",
            "response_id": "resp_x",
            "output_index": 0,
            "item": {
                "id": "item_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [],
            },
        },
        {
            "type": "response.content_part.added",
            "event_id": "event_5",
            "response_id": "resp_x",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "audio", "transcript": ""},
        },
        {"type": "mcp_list_tools.completed", "event_id": "event_6", "item_id": "mcp_1"},
        {"type": "output_audio_buffer.started", "event_id": "event_7", "response_id": "resp_x"},
        {
            "type": "conversation.item.truncated",
            "event_id": "event_8",
            "item_id": "item_1",
            "content_index": 0,
            "audio_end_ms": 100,
        },
    ):
        h.upstream(ev)
    assert h.to_client == [] and h.total_violations() == 0
    h.logs.clear()
    h.upstream({"type": "response.brand_new_thing", "x": 1})
    assert h.to_client == [] and h.sent_upstream == []
    assert dict(+h.stats.violations) == {"unmapped_upstream_event": 1}
    assert any(
        log.level.upper() in ("WARNING", "WARN")
        and (
            "response.brand_new_thing" in log.message
            or any("response.brand_new_thing" in v for _k, v in log.fields)
        )
        for log in h.logs
    ), h.logs


def test_p100_non_json_upstream_text() -> None:
    h = H.ready_harness()
    h.upstream("not json")
    h.upstream({"no_type": True})
    assert h.to_client == []
    assert h.stats.violations["invalid_upstream_json"] == 1
    assert h.stats.violations["malformed_upstream_event"] == 1
    assert h.client_close is None and h.upstream_close is None


def test_p101_audio_for_a_response_never_announced() -> None:
    h = H.ready_harness()
    chunks = [H.A_bytes(960, 960 * k) for k in range(3)]
    for c in chunks:
        h.upstream(H.audio_delta("resp_echo", "item_e1", c))
    assert h.client_types() == ["AgentStartedSpeaking", "<binary>", "<binary>", "<binary>"]
    assert h.client_binaries() == chunks
    h.clear()
    h.confirm_items = True
    h.client(H.inject_agent("Please hold."))
    assert h.count_client("InjectionRefused") == 0
    assert h.up("response.create") == [H.scripted_create("Please hold.")]
