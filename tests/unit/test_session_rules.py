"""Session rules that no single §13 scenario states: robustness, bounds and edge transitions."""

from __future__ import annotations

from typing import Any

import pytest

from fastproxy.protocol import actions as A
from fastproxy.protocol import events as E
from fastproxy.protocol.options import SessionOptions
from fastproxy.protocol.session import Session

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]


def ready_session(**options: Any) -> Session:
    s = Session(SessionOptions(**options), connection_id="c1")
    s.start(0)
    s.handle(E.UpstreamOpened(), 0)
    s.handle(
        E.ClientText(b'{"type":"Settings","agent":{"speak":{"provider":{"voice":"alloy"}}}}'), 1
    )
    s.handle(E.UpstreamText(b'{"type":"session.updated"}'), 2)
    assert s.phase == "READY"
    return s


def error_naming(event_id: str, code: str) -> str:
    return f'{{"type":"error","error":{{"code":"{code}","message":"no","event_id":"{event_id}"}}}}'


def upstream_types(actions: list[A.Action]) -> list[str]:
    return [a.type for a in actions if isinstance(a, A.SendUpstream)]


def client_types(actions: list[A.Action]) -> list[str]:
    return [a.type for a in actions if isinstance(a, A.SendClient)]


def test_closed_session_ignores_every_event() -> None:
    s = ready_session()
    s.handle(E.ClientClosed(1000), 3)
    assert s.phase == "CLOSED"
    assert s.handle(E.UpstreamText(b'{"type":"response.created","response":{"id":"r"}}'), 4) == []
    assert s.handle(E.TimerFired("sequencer"), 5) == []


def test_an_internal_error_closes_only_this_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    s = ready_session()

    def boom(*_: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(s, "t1_inject_user", boom)
    actions = s.handle(E.ClientText(b'{"type":"InjectUserMessage","content":"x"}'), 3)
    assert client_types(actions) == ["Error"]
    closes = [a for a in actions if isinstance(a, A.CloseClient | A.CloseUpstream)]
    assert closes == [A.CloseClient(1011, "internal_error"), A.CloseUpstream(1000)]
    assert s.stats.violations["internal_error"] == 1
    assert s.phase == "CLOSED"


def test_empty_messages_are_ignored_and_ready_audio_is_appended() -> None:
    s = ready_session()
    assert s.handle(E.ClientText(b""), 3) == []
    assert s.handle(E.ClientAudio(b""), 3) == []
    assert s.handle(E.ClientAudio(b"\x01\x02"), 4) == [A.SendAudioUpstream(b"\x01\x02")]


def test_audio_appended_counts_only_in_manual_mode() -> None:
    assert ready_session().handle(E.AudioAppended(4800), 3) == []
    manual = ready_session(turn_detection="manual")
    assert manual.handle(E.AudioAppended(4800), 3) == [A.StartTimer("commit", 400)]


def test_second_upstream_open_and_stale_timers_change_nothing() -> None:
    s = ready_session()
    assert s.handle(E.UpstreamOpened(), 3) == []
    assert s.handle(E.TimerFired("ready"), 4) == []  # cancelled at READY


def test_sequencer_fifo_overflow_closes_with_1008() -> None:
    h = H.ready_harness(queue_max_messages=3)
    h.upstream(H.response_created("resp_1"))
    for i in range(3):
        h.client(H.update_prompt(f"p{i}"))
    assert h.client_close is None
    h.client(H.update_prompt("one too many"))
    assert [e["code"] for e in h.errors()] == ["client_queue_overflow"]
    assert h.client_close == (1008, "client_queue_overflow")
    assert h.upstream_close is not None and h.upstream_close[0] == 1000


def test_rejected_context_item_is_a_warning_and_ready_continues() -> None:
    s = Session(SessionOptions(), connection_id="c")
    s.start(0)
    s.handle(E.UpstreamOpened(), 0)
    settings = (
        b'{"type":"Settings","agent":{"context":{"messages":[{"role":"user","content":"Hi"}]}}}'
    )
    s.handle(E.ClientText(settings), 1)
    actions = s.handle(E.UpstreamText(b'{"type":"session.updated"}'), 2)
    create = next(a for a in actions if isinstance(a, A.SendUpstream))
    event_id = create.data.split(b'"event_id":"')[1].split(b'"')[0].decode()
    error = error_naming(event_id, "invalid_value")
    actions = s.handle(E.UpstreamText(error.encode()), 3)
    assert client_types(actions) == ["Warning"]
    assert s.phase == "READY"


def test_error_for_an_answered_response_create_is_forwarded_and_keeps_the_slot() -> None:
    h = H.ready_harness()
    h.confirm_items = True
    h.client(H.inject_user("Hi"))
    create_id = h.upstream_ids[h.sent_upstream.index({"type": "response.create"})]
    h.upstream(H.response_created("resp_1"))
    h.upstream(H.upstream_error("invalid_value", "late", event_id=create_id))
    assert [e["code"] for e in h.errors()] == ["invalid_value"]
    assert h.session.s.active
    assert h.stats.turns_completed == {}


def test_rejected_voice_update_restores_the_previous_voice() -> None:
    s = ready_session()
    actions = s.handle(
        E.ClientText(b'{"type":"UpdateSpeak","speak":{"provider":{"voice":"marin"}}}'), 3
    )
    update = next(a for a in actions if isinstance(a, A.SendUpstream))
    event_id = update.data.split(b'"event_id":"')[1].split(b'"')[0].decode()
    assert b'"voice":"marin"' in update.data
    error = error_naming(event_id, "cannot_update_voice")
    actions = s.handle(E.UpstreamText(error.encode()), 4)
    assert client_types(actions) == ["Warning"]
    assert s.s.output_audio["voice"] == "alloy"


def test_input_transcription_accumulators_are_bounded() -> None:
    s = ready_session()
    for i in range(100):
        kind = "conversation.item.input_audio_transcription.delta"
        event = f'{{"type":"{kind}","item_id":"i{i}","delta":"x"}}'
        s.handle(E.UpstreamText(event.encode()), 3 + i)
    assert len(s.s.transcripts) <= 64


def test_events_without_response_id_belong_to_the_running_response() -> None:
    h = H.ready_harness()
    h.upstream(H.response_created("resp_1"))
    h.upstream({"type": "response.output_audio.done"})  # no response_id
    h.upstream(H.response_done("resp_1"))
    assert h.client_types().count("AgentAudioDone") == 1


def test_agent_thinking_once_per_function_call_item_and_never_for_messages() -> None:
    h = H.ready_harness()
    h.upstream(H.response_created("resp_1"))
    h.upstream({"type": "response.output_item.added", "item": {"id": "m1", "type": "message"}})
    h.upstream(H.function_call_item_added("resp_1", "call_1", "f"))
    h.upstream(H.function_call_item_added("resp_1", "call_1", "f"))
    assert h.client_types() == ["AgentThinking"]


def test_prompt_updates_join_without_blank_lines() -> None:
    s = Session(SessionOptions(), connection_id="c")
    s.start(0)
    s.handle(E.UpstreamOpened(), 0)
    s.handle(E.ClientText(b'{"type":"Settings"}'), 1)
    s.handle(E.UpstreamText(b'{"type":"session.updated"}'), 2)
    first = s.handle(E.ClientText(b'{"type":"UpdatePrompt","prompt":"A"}'), 3)
    assert b'"instructions":"A"' in first[0].data  # type: ignore[union-attr]
    s.handle(E.UpstreamText(b'{"type":"session.updated"}'), 4)
    second = s.handle(E.ClientText(b'{"type":"UpdatePrompt","prompt":""}'), 5)
    assert b'"instructions":"A"' in second[0].data  # type: ignore[union-attr]


def test_tool_reply_timeout_names_the_missing_function_result() -> None:
    h = H.ready_harness(sequencer_timeout_ms=500)
    h.confirm_items = True
    h.upstream(H.response_created("resp_1"))
    h.upstream(H.function_call_done("resp_1", "call_1", "a"))
    h.upstream(H.function_call_done("resp_1", "call_2", "b", iid="item_f2"))
    h.upstream(H.response_done("resp_1"))
    h.client(H.fcr("call_1", "1"))
    h.advance(600)
    warnings = h.warnings("sequencer_timeout")
    assert len(warnings) == 1 and "function results for call_2" in warnings[0]["description"]
    assert h.sent_upstream[-1] == {"type": "response.create"}  # forced after the timeout


def test_response_records_are_bounded() -> None:
    s = ready_session()
    for i in range(300):
        s.handle(
            E.UpstreamText(f'{{"type":"response.created","response":{{"id":"r{i}"}}}}'.encode()), i
        )
        s.handle(
            E.UpstreamText(f'{{"type":"response.done","response":{{"id":"r{i}"}}}}'.encode()), i
        )
    assert len(s.s.records) <= 256
    assert s.stats.turns_completed["incomplete"] == 300  # no status given


def test_a_requeued_update_goes_before_queued_replies() -> None:
    h = H.ready_harness()
    h.client(H.update_prompt("X"))
    update_id = h.upstream_ids[-1]
    h.upstream(H.response_created("resp_1"))
    h.confirm_items = True
    h.client(H.inject_user("Hello"))
    h.upstream(H.conflict_error(update_id))
    h.upstream(H.response_done("resp_1"))
    tail = [m["type"] for m in h.sent_upstream[-2:]]
    assert tail == ["session.update", "response.create"]


def test_manual_debounce_queues_one_audio_turn_only() -> None:
    h = H.ready_harness(turn_detection="manual")
    h.upstream(H.response_created("resp_1"))
    h.client_audio(H.A_bytes(9600))
    h.advance(450)
    h.client_audio(H.A_bytes(9600))
    h.advance(450)
    from fastproxy.protocol.sequencer import AudioTurn

    assert sum(isinstance(e, AudioTurn) for e in h.session.s.fifo) == 1
    h.upstream(H.response_done("resp_1"))
    assert [m["type"] for m in h.sent_upstream[-2:]] == [
        "input_audio_buffer.commit",
        "response.create",
    ]


def test_recent_response_events_postpone_the_safety_timeout() -> None:
    h = H.ready_harness(sequencer_timeout_ms=500)
    h.upstream(H.response_created("resp_1"))
    h.at(400)
    h.upstream(H.transcript_delta("resp_1", "item_a1", "Hel"))
    h.at(550)
    assert h.warnings() == []
    h.at(950)
    assert [w["code"] for w in h.warnings()] == ["sequencer_timeout"]
