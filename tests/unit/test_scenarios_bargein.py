"""PROTOCOL.md §13.10 (barge-in), P-102 ... P-107, at the Session level.

The playback record comes from the relay's running total of binary bytes sent to the client
(``UpstreamText.client_audio_bytes``), which the harness's ``FakeRelay`` keeps like the compiled
relay; deltas of an interrupted response are dropped by the relay (``DropOutput``) or the Session.
"""

from __future__ import annotations

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]


def test_p102_truncation_maths() -> None:
    h = H.run_p102_until_barge_in()
    assert h.client_types() == [
        "AgentStartedSpeaking",
        "<binary>",
        "<binary>",
        "UserStartedSpeaking",
    ]
    assert h.times_client("UserStartedSpeaking") == [700]
    assert h.sent_upstream == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_a1",
            "content_index": 0,
            "audio_end_ms": 700,
        }
    ]
    assert h.count_up("response.cancel") == 0
    binaries_before = len(h.client_binaries())
    assert binaries_before == 2
    h.at(750)
    h.upstream(H.audio_delta("resp_1", "item_a1", H.A_bytes(4800, 96000)))
    assert len(h.client_binaries()) == binaries_before
    h.at(800)
    h.upstream({"type": "response.done", "response": {"id": "resp_1", "status": "cancelled"}})
    assert h.count_client("AgentAudioDone") == 1
    assert h.stats.barge_ins == 1
    assert h.count_up("response.cancel") == 0


def test_p103_bound_by_bytes_sent_and_grace() -> None:
    def run(t_speech: float) -> H.Harness:
        h = H.Harness().ready(
            {**H.S0, "audio": {"output": {"encoding": "linear16", "sample_rate": 16000}}}
        )
        h.upstream(H.response_created("resp_1"))
        h.upstream(H.audio_delta("resp_1", "item_a1", H.A_bytes(9600)))
        assert [len(b) for b in h.client_binaries()] == [6400]
        h.upstream(H.response_done("resp_1"))
        h.at(t_speech)
        h.clear()
        h.upstream(H.speech_started())
        assert h.client_json() == [{"type": "UserStartedSpeaking"}]
        return h

    h = run(600)
    assert h.sent_upstream == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_a1",
            "content_index": 0,
            "audio_end_ms": 200,
        }
    ]
    assert h.stats.barge_ins == 1
    h2 = run(800)
    assert h2.sent_upstream == []
    assert h2.stats.barge_ins == 0


def test_p104_manual_mode_cancels() -> None:
    h = H.ready_harness(turn_detection="manual")
    h.upstream(H.response_created("resp_1"))
    h.upstream(H.audio_delta("resp_1", "item_a1", H.A_bytes(4800)))
    h.at(50)
    h.upstream(H.speech_started())
    assert h.sent_upstream == [
        {"type": "response.cancel", "response_id": "resp_1"},
        {
            "type": "conversation.item.truncate",
            "item_id": "item_a1",
            "content_index": 0,
            "audio_end_ms": 50,
        },
    ]
    assert h.stats.barge_ins == 1


def test_p105_no_barge_in_without_agent_audio() -> None:
    h = H.ready_harness()
    h.upstream(H.response_created("resp_1"))
    h.at(300)
    h.upstream(H.speech_started())
    assert h.client_json() == [{"type": "UserStartedSpeaking"}]
    assert h.sent_upstream == []
    assert h.stats.barge_ins == 0


def test_p106_barge_in_on_a_scripted_response() -> None:
    h = H.ready_harness()
    h.confirm_items = True
    h.script_responses(
        [H.response_created("resp_2"), H.audio_delta("resp_2", "item_s1", H.A_bytes(48000))]
    )
    h.client(H.inject_agent("Please hold."))
    assert len(h.client_binaries()) == 1
    h.clear()
    h.at(300)
    h.upstream(H.speech_started())
    assert h.sent_upstream == [{"type": "response.cancel", "response_id": "resp_2"}]
    assert h.stats.barge_ins == 1


def test_p107_interrupted_responses_request_no_functions() -> None:
    h = H.run_p102_until_barge_in()
    h.upstream(H.function_call_done("resp_1", "call_7", "get_time"))
    h.upstream(H.response_done("resp_1", "cancelled"))
    assert h.count_client("FunctionCallRequest") == 0
    assert h.count_client("AgentAudioDone") == 1
