"""Micro-benchmarks of the control path: msgspec decode per message, ``Session.handle`` per event.

Issue target: ``Session.handle`` on a typical control event costs <= 20 µs. Each benchmark
replays one event against a Session prepared in the state where that event is typical, and
restores that state so every round measures the same transition.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fastproxy import messages
from fastproxy.protocol import events as E
from fastproxy.protocol.options import SessionOptions
from fastproxy.protocol.session import Session

CLIENT_MESSAGES = {
    "Settings": b'{"type":"Settings","audio":{"input":{"encoding":"linear16","sample_rate":16000}},'
    b'"agent":{"think":{"provider":{"model":"gpt-realtime"},"prompt":"Be brief.",'
    b'"functions":[{"name":"get_time","parameters":{"type":"object"}}]},'
    b'"speak":{"provider":{"voice":"marin"}},"greeting":"Hi"}}',
    "InjectUserMessage": b'{"type":"InjectUserMessage","content":"What time is it?"}',
    "FunctionCallResponse": b'{"type":"FunctionCallResponse","id":"call_1","content":"{}"}',
    "UpdatePrompt": b'{"type":"UpdatePrompt","prompt":"Answer in French."}',
    "KeepAlive": b'{"type":"KeepAlive"}',
}

UPSTREAM_EVENTS = {
    "response.output_audio_transcript.delta": b'{"type":"response.output_audio_transcript.delta",'
    b'"event_id":"event_1","response_id":"resp_1","item_id":"item_1","output_index":0,'
    b'"content_index":0,"delta":"Hello ","obfuscation":"q7Zk"}',
    "conversation.item.added": b'{"type":"conversation.item.added","event_id":"event_2",'
    b'"previous_item_id":null,"item":{"id":"item_9","object":"realtime.item","type":"message",'
    b'"status":"completed","role":"user","content":[{"type":"input_audio","transcript":null}]}}',
    "input_audio_buffer.speech_started": b'{"type":"input_audio_buffer.speech_started",'
    b'"event_id":"event_3","audio_start_ms":840,"item_id":"item_u1"}',
    "rate_limits.updated": b'{"type":"rate_limits.updated","event_id":"event_4","rate_limits":'
    b'[{"name":"tokens","limit":40000,"remaining":39000,"reset_seconds":1.5}]}',
}


@pytest.mark.parametrize("name", sorted(CLIENT_MESSAGES))
def test_decode_client_message(benchmark: Callable[..., object], name: str) -> None:
    benchmark.group = "msgspec decode: client message"
    data = CLIENT_MESSAGES[name]
    benchmark(messages.decode_client_message, data)


@pytest.mark.parametrize("name", sorted(UPSTREAM_EVENTS))
def test_decode_upstream_event(benchmark: Callable[..., object], name: str) -> None:
    benchmark.group = "msgspec decode: upstream event"
    data = UPSTREAM_EVENTS[name]
    benchmark(messages.decode_upstream_event, data)


def ready_session() -> Session:
    s = Session(SessionOptions(), connection_id="bench")
    s.start(0)
    s.handle(E.UpstreamOpened(), 0)
    s.handle(E.ClientText(CLIENT_MESSAGES["Settings"]), 1)
    s.handle(E.UpstreamText(b'{"type":"session.updated"}'), 2)
    return s


def test_handle_transcript_delta_during_response(benchmark: Callable[..., object]) -> None:
    """The most frequent control event: a transcript delta while a response streams."""
    benchmark.group = "Session.handle"
    s = ready_session()
    s.handle(E.UpstreamText(b'{"type":"response.created","response":{"id":"resp_1"}}'), 3)
    event = E.UpstreamText(UPSTREAM_EVENTS["response.output_audio_transcript.delta"])
    benchmark(s.handle, event, 4.0)


def test_handle_log_only_event(benchmark: Callable[..., object]) -> None:
    benchmark.group = "Session.handle"
    s = ready_session()
    benchmark(s.handle, E.UpstreamText(UPSTREAM_EVENTS["rate_limits.updated"]), 4.0)


def test_handle_speech_started(benchmark: Callable[..., object]) -> None:
    benchmark.group = "Session.handle"
    s = ready_session()
    benchmark(s.handle, E.UpstreamText(UPSTREAM_EVENTS["input_audio_buffer.speech_started"]), 4.0)


def test_handle_keepalive(benchmark: Callable[..., object]) -> None:
    benchmark.group = "Session.handle"
    s = ready_session()
    benchmark(s.handle, E.ClientText(CLIENT_MESSAGES["KeepAlive"]), 4.0)


def test_handle_inject_then_confirm_then_response(benchmark: Callable[..., object]) -> None:
    """One whole user turn through the sequencer: inject, confirmation, created, done (4 events);
    the figure is per turn, so per event it is a quarter of it."""
    benchmark.group = "Session.handle (whole turn, 4 events)"
    s = ready_session()
    counter = iter(range(10**9))

    def turn() -> None:
        n = next(counter)
        s.handle(E.ClientText(CLIENT_MESSAGES["InjectUserMessage"]), 10.0)
        s.handle(
            E.UpstreamText(b'{"type":"conversation.item.added","item":{"id":"fp_%d"}}' % (n + 1)),
            11.0,
        )
        rid = b"r%d" % n
        s.handle(E.UpstreamText(b'{"type":"response.created","response":{"id":"%s"}}' % rid), 12.0)
        s.handle(E.UpstreamText(b'{"type":"response.done","response":{"id":"%s"}}' % rid), 13.0)

    benchmark(turn)
    assert s.stats.turns_started["reply"] >= 1
