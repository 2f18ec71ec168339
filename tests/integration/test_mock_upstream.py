"""The mock OpenAI Realtime upstream, exercised over real loopback sockets.

Clients are ``websockets`` (asyncio) and, where frame-level control matters, picows. Each test
runs its own event loop (uvloop) with a hard deadline, so the file needs no async plugin.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop
import websockets
from picows import WSHandshakeError, WSListener, WSMsgType, WSTransport, ws_connect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from fastproxy.testing import (
    AudioReply,
    ErrorReply,
    FunctionCallReply,
    MockBehaviour,
    MockConnection,
    MockHookError,
    MockUpstream,
    NoReply,
    RejectItem,
    confirm_only,
    events,
)
from fastproxy.testing.speech import BYTES_PER_MS, EnergyVad, pcm_rms, silence, synth_speech

Event = dict[str, Any]
AUTH = {"Authorization": "Bearer sk-test"}


def async_test(fn: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(fn)
    def wrapper() -> None:
        uvloop.run(asyncio.wait_for(fn(), 10))

    return wrapper


async def connect(mock: MockUpstream, **kw: Any) -> ClientConnection:
    return await websockets.connect(mock.url, additional_headers=AUTH, max_size=None, **kw)


async def recv(ws: ClientConnection, timeout: float = 2.0) -> Event:
    msg = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(msg, str), "the mock sent a binary message"
    out: Event = json.loads(msg)
    return out


async def recv_until(ws: ClientConnection, type_: str, timeout: float = 3.0) -> list[Event]:
    """Every event up to and including the first of ``type_``."""
    got: list[Event] = []
    while True:
        got.append(await recv(ws, timeout))
        if got[-1]["type"] == type_:
            return got


async def nothing_within(ws: ClientConnection, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), seconds)


async def send(ws: ClientConnection, event: Event) -> None:
    await ws.send(json.dumps(event, separators=(",", ":")))


async def ready(mock: MockUpstream) -> tuple[ClientConnection, MockConnection]:
    """Connected, ``session.created`` consumed."""
    ws = await connect(mock)
    assert (await recv(ws))["type"] == "session.created"
    return ws, await mock.wait_for_connection(len(mock.connections) - 1)


def user_item(item_id: str, text: str) -> Event:
    return {
        "id": item_id,
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }


def append(pcm: bytes) -> str:
    return '{"type":"input_audio_buffer.append","audio":"' + base64.b64encode(pcm).decode() + '"}'


# ---------------------------------------------------------------------------- handshake


@async_test
async def test_session_created_and_upgrade_headers_recorded() -> None:
    async with MockUpstream() as mock:
        assert mock.url == f"ws://127.0.0.1:{mock.port}/v1/realtime?model=gpt-realtime"
        ws = await connect(mock)
        first = await recv(ws)
        assert first["type"] == "session.created"
        assert first["session"]["id"] == "sess_1" and first["session"]["type"] == "realtime"
        assert first["event_id"].startswith("event_")
        conn = await mock.wait_for_connection(0)
        assert conn.header("authorization") == "Bearer sk-test"
        assert conn.header("OpenAI-Beta") is None
        assert conn.path == "/v1/realtime" and conn.query == {"model": "gpt-realtime"}
        await ws.close(1001)
        await conn.wait_closed()
        assert conn.close_code == 1001
        assert (mock.opened, mock.closed, mock.active) == (1, 1, 0)


@async_test
async def test_h2_preset_sends_exact_minimal_events() -> None:
    async with MockUpstream(MockBehaviour.h2()) as mock:
        ws = await connect(mock)
        created = await recv(ws)
        created.pop("event_id")
        assert created == {"type": "session.created", "session": {"id": "sess_1"}}
        await send(ws, {"type": "session.update", "session": {"type": "realtime"}})
        updated = await recv(ws)
        updated.pop("event_id")
        assert updated == {"type": "session.updated", "session": {"type": "realtime"}}
        await send(ws, {"type": "conversation.item.create", "item": user_item("fp_1", "Hi")})
        await send(ws, {"type": "response.create"})
        await nothing_within(ws, 0.3)  # H2: nothing else unless scripted


@async_test
async def test_refuse_status_is_a_handshake_failure() -> None:
    async with MockUpstream(refuse_status=401) as mock:
        with pytest.raises(InvalidStatus) as info:
            await connect(mock)
        assert info.value.response.status_code == 401
        with pytest.raises(WSHandshakeError) as info2:
            await ws_connect(WSListener, mock.url)
        assert info2.value.response is not None and info2.value.response.status == 401
        assert mock.refused == 2 and mock.opened == 0
        assert mock.upgrade_requests[0][0] == "/v1/realtime?model=gpt-realtime"


@async_test
async def test_never_answer_upgrade_times_out() -> None:
    async with MockUpstream(never_answer_upgrade=True) as mock:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await connect(mock, open_timeout=0.3)
        assert 0.23 < time.monotonic() - t0 < 2.0
        assert mock.tcp_accepted == 1 and mock.opened == 0 and not mock.upgrade_requests


@async_test
async def test_handshake_delay() -> None:
    async with MockUpstream(handshake_delay_ms=250) as mock:
        t0 = time.monotonic()
        ws = await connect(mock)
        assert 0.23 <= time.monotonic() - t0 < 1.5
        assert (await recv(ws))["type"] == "session.created"
        await ws.close()


# ---------------------------------------------------------------------------- session.update


@async_test
async def test_session_update_answered_at_once_delayed_or_never() -> None:
    update = {
        "type": "session.update",
        "event_id": "fpe_1",
        "session": {"type": "realtime", "instructions": "Be brief."},
    }
    async with MockUpstream() as mock:
        ws, conn = await ready(mock)
        await send(ws, update)
        answer = await recv(ws)
        assert answer["type"] == "session.updated"
        assert answer["session"]["instructions"] == "Be brief."
        assert conn.session["instructions"] == "Be brief."
        assert (await conn.wait_for_event("session.update"))["event_id"] == "fpe_1"

        mock.behaviour.session_updated_delay_ms = 200
        ws2, _ = await ready(mock)
        t0 = time.monotonic()
        await send(ws2, update)
        assert (await recv(ws2))["type"] == "session.updated"
        assert 0.18 <= time.monotonic() - t0 < 1.5

        mock.behaviour.answer_session_update = False
        ws3, conn3 = await ready(mock)
        await send(ws3, update)
        await conn3.wait_for_event("session.update")
        await nothing_within(ws3, 0.3)


@async_test
async def test_hook_rejects_session_update_naming_its_event_id() -> None:
    async with MockUpstream() as mock:

        @mock.on("session.update")
        def reject(conn: MockConnection, event: Event) -> bool:
            conn.reject(event, "invalid_value", "Invalid model")
            return True

        ws, _ = await ready(mock)
        await send(
            ws, {"type": "session.update", "event_id": "E7", "session": {"type": "realtime"}}
        )
        err = await recv(ws)
        assert err["type"] == "error"
        assert err["error"]["code"] == "invalid_value"
        assert err["error"]["message"] == "Invalid model"
        assert err["error"]["event_id"] == "E7"


# ---------------------------------------------------------------------------- items


@async_test
async def test_item_confirmation_echoes_the_id() -> None:
    async with MockUpstream() as mock:
        ws, conn = await ready(mock)
        for n in (1, 2):
            item = user_item(f"fp_{n}", f"Hello {n}")
            await send(ws, {"type": "conversation.item.create", "event_id": f"e{n}", "item": item})
            added, done = await recv(ws), await recv(ws)
            assert [added["type"], done["type"]] == [
                "conversation.item.added",
                "conversation.item.done",
            ]
            for e in (added, done):
                assert e["item"]["id"] == f"fp_{n}"
                assert e["item"]["content"] == item["content"]
                assert e["previous_item_id"] == (None if n == 1 else "fp_1")
        assert list(conn.items) == ["fp_1", "fp_2"]


@async_test
async def test_item_policies_confirm_some_late_and_reject() -> None:
    async with MockUpstream(confirm_items=confirm_only("function_call_output", delay_ms=150)) as m:
        ws, _ = await ready(m)
        await send(ws, {"type": "conversation.item.create", "item": user_item("fp_1", "x")})
        out = {"id": "fp_2", "type": "function_call_output", "call_id": "call_1", "output": "{}"}
        t0 = time.monotonic()
        await send(ws, {"type": "conversation.item.create", "item": out})
        added = await recv(ws)
        assert added["type"] == "conversation.item.added" and added["item"]["id"] == "fp_2"
        assert time.monotonic() - t0 >= 0.13
        assert (await recv(ws))["item"]["id"] == "fp_2"

    async with MockUpstream(
        confirm_items=lambda c, e: RejectItem("invalid_value", "Bad item")
    ) as m:
        ws, _ = await ready(m)
        await send(
            ws,
            {"type": "conversation.item.create", "event_id": "E1", "item": user_item("fp_1", "x")},
        )
        err = await recv(ws)
        assert err["type"] == "error"
        assert (err["error"]["event_id"], err["error"]["message"]) == ("E1", "Bad item")


# ---------------------------------------------------------------------------- replies

REPLY_ORDER = [
    "response.created",
    "rate_limits.updated",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
]
REPLY_TAIL = [
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
]


def check_audio_reply(got: list[Event], audio_ms: int) -> tuple[str, str]:
    """Asserts the lifecycle; returns (response id, transcript)."""
    types = [e["type"] for e in got]
    body = [t for t in types if t.endswith(".delta")]
    assert types == REPLY_ORDER + body + REPLY_TAIL
    created, done = got[0], got[-1]
    rid = created["response"]["id"]
    assert created["response"]["status"] == "in_progress"
    assert done["response"]["id"] == rid and done["response"]["status"] == "completed"
    assert done["response"]["usage"]["total_tokens"] > 0
    assert done["response"]["output"][0]["content"][0]["type"] == "output_audio"
    deltas = [e for e in got if e["type"] == "response.output_audio.delta"]
    assert set(deltas[0]) == {
        "type",
        "event_id",
        "response_id",
        "item_id",
        "output_index",
        "content_index",
        "delta",
    }
    pcm = b"".join(base64.b64decode(e["delta"]) for e in deltas)
    assert len(pcm) == audio_ms * BYTES_PER_MS
    assert all(len(base64.b64decode(e["delta"])) <= 100 * BYTES_PER_MS for e in deltas)
    assert pcm_rms(pcm) > 1000  # speech-like, not silence
    # transcript deltas are interleaved with the audio and add up to the final transcript
    first_audio = types.index("response.output_audio.delta")
    assert types.index("response.output_audio_transcript.delta") < first_audio
    text = "".join(e["delta"] for e in got if e["type"].endswith("transcript.delta"))
    transcript = next(e for e in got if e["type"].endswith("transcript.done"))["transcript"]
    assert text == transcript
    assert all(e.get("response_id", rid) == rid for e in got[1:-1] if "response_id" in e)
    return rid, transcript


@async_test
async def test_default_reply_lifecycle_and_audio() -> None:
    async with MockUpstream() as mock:
        ws, conn = await ready(mock)
        await send(ws, {"type": "response.create", "event_id": "r1"})
        rid, transcript = check_audio_reply(await recv_until(ws, "response.done"), 600)
        assert (rid, transcript) == ("resp_1", "Hello from the mock upstream.")
        assert not conn.active_responses
        # a reply after an injected user message is derived from its text
        await send(ws, {"type": "conversation.item.create", "item": user_item("fp_1", "Hi!")})
        await recv_until(ws, "conversation.item.done")
        await send(ws, {"type": "response.create"})
        got = await recv_until(ws, "response.done")
        rid, transcript = check_audio_reply(got, 600)
        assert (rid, transcript) == ("resp_2", "You said: Hi!")
        assert got[3]["previous_item_id"] == "fp_1"


@async_test
async def test_out_of_band_reply_says_the_text() -> None:
    async with MockUpstream(reply_audio_ms=300) as mock:
        ws, _ = await ready(mock)
        instructions = "Say exactly the following text, word for word, and nothing else:\nHi!"
        await send(
            ws,
            {
                "type": "response.create",
                "response": {"conversation": "none", "instructions": instructions},
            },
        )
        got = await recv_until(ws, "response.done")
        assert not any(e["type"].startswith("conversation.item") for e in got)
        done = next(e for e in got if e["type"] == "response.output_audio_transcript.done")
        assert done["transcript"] == "Hi!"
        pcm = b"".join(
            base64.b64decode(e["delta"]) for e in got if e["type"] == "response.output_audio.delta"
        )
        assert len(pcm) == 300 * BYTES_PER_MS
        assert got[-1]["response"]["conversation_id"] is None


@async_test
async def test_paced_reply_single_response_rule_and_cancel() -> None:
    async with MockUpstream(pacing_ms=40, reply_audio_ms=1000) as mock:
        ws, conn = await ready(mock)
        await send(ws, {"type": "response.create", "event_id": "r1"})
        assert (await recv(ws))["type"] == "response.created"
        await send(ws, {"type": "response.create", "event_id": "r2"})
        err = await conn.wait_for(lambda c: next((e for e in c.sent if e["type"] == "error"), None))
        assert err["error"]["code"] == "conversation_already_has_active_response"
        assert err["error"]["event_id"] == "r2"
        await send(ws, {"type": "response.cancel", "event_id": "c1"})
        got = await recv_until(ws, "response.done")
        assert got[-1]["response"]["status"] == "cancelled"
        assert got[-1]["response"]["id"] == "resp_1"
        # cancelled before all ten 100 ms deltas (paced 40 ms apart) went out
        assert sum(e["type"] == "response.output_audio.delta" for e in got) < 10
        assert not conn.active_responses and not conn._reply_tasks
        await nothing_within(ws, 0.2)  # the paced task is gone


@async_test
async def test_queued_replies_function_call_error_and_none() -> None:
    replies = [
        FunctionCallReply("get_time", '{"tz":"UTC"}', call_id="call_1"),
        ErrorReply("invalid_value", "Bad response"),
        NoReply(),
        AudioReply("It is noon.", audio_ms=200),
    ]
    async with MockUpstream(replies=replies) as mock:
        ws, conn = await ready(mock)
        await send(ws, {"type": "response.create"})
        got = await recv_until(ws, "response.done")
        call = next(e for e in got if e["type"] == "response.function_call_arguments.done")
        assert (call["call_id"], call["name"], call["arguments"]) == (
            "call_1",
            "get_time",
            '{"tz":"UTC"}',
        )
        assert got[2]["item"]["type"] == "function_call"
        await send(ws, {"type": "response.create", "event_id": "E2"})
        err = await recv(ws)
        assert (err["error"]["message"], err["error"]["event_id"]) == ("Bad response", "E2")
        await send(ws, {"type": "response.create"})
        await nothing_within(ws, 0.2)
        await send(ws, {"type": "response.create"})
        got = await recv_until(ws, "response.done")
        assert check_audio_reply(got, 200) == ("resp_2", "It is noon.")
        assert mock.behaviour.replies == replies  # each connection consumes its own copy
        assert conn.replies == []


@async_test
async def test_async_hook_scripts_a_timed_sequence() -> None:
    async with MockUpstream() as mock:

        @mock.on("response.create")
        async def answer(conn: MockConnection, event: Event) -> None:
            rid = conn.new_response_id()
            conn.send(events.response_created(rid))
            await asyncio.sleep(0.1)
            conn.send(events.audio_delta(rid, "item_a1", b"\x00\x00\xff\xff"))
            conn.send(events.transcript_done(rid, "item_a1", "Hi"))
            conn.send(events.response_done(rid))

        ws, _ = await ready(mock)
        t0 = time.monotonic()
        await send(ws, {"type": "response.create"})
        got = await recv_until(ws, "response.done")
        assert [e["type"] for e in got] == [
            "response.created",
            "response.output_audio.delta",
            "response.output_audio_transcript.done",
            "response.done",
        ]
        assert got[1]["delta"] == "AAD//w=="
        assert time.monotonic() - t0 >= 0.08


@async_test
async def test_scripted_ids_are_never_reused_by_generated_replies() -> None:
    async with MockUpstream() as mock:
        ws, conn = await ready(mock)
        conn.send(events.response_created("resp_1"))
        conn.send(events.function_call_done("resp_1", "item_f1", "call_1", "get_time"))
        conn.send(events.response_done("resp_1"))
        await recv_until(ws, "response.done")
        await send(ws, {"type": "response.create"})
        got = await recv_until(ws, "response.done")
        assert got[0]["response"]["id"] == "resp_2"
        assert conn.new_call_id() == "call_2"


@async_test
async def test_hook_errors_are_reported_on_stop() -> None:
    mock = await MockUpstream().start()

    def boom(conn: MockConnection, event: Event) -> bool:
        raise RuntimeError("scripted failure")

    mock.on_event = boom
    ws, _ = await ready(mock)
    await send(ws, {"type": "response.create"})
    await mock.wait_until(lambda m: m.hook_errors)
    with pytest.raises(MockHookError):
        await mock.stop()


# ---------------------------------------------------------------------------- echo mode


@async_test
async def test_echo_mode_is_byte_identical_and_quiet() -> None:
    async with MockUpstream(echo=True) as mock:
        ws, conn = await ready(mock)
        chunks = [os.urandom(960 + 2 * i) for i in range(100)]
        for chunk in chunks:
            await ws.send(append(chunk))
        # a non-canonical append (extra key) is echoed too, through the parsing path
        b64 = base64.b64encode(b"\x01\x02").decode()
        await send(ws, {"type": "input_audio_buffer.append", "event_id": "x", "audio": b64})
        for chunk in chunks:
            delta = await recv(ws)
            assert delta == {
                "type": "response.output_audio.delta",
                "response_id": "resp_echo",
                "item_id": "item_echo",
                "output_index": 0,
                "content_index": 0,
                "delta": base64.b64encode(chunk).decode(),
            }
        assert (await recv(ws))["delta"] == b64
        await nothing_within(ws, 0.2)
        assert conn.appends_received == 101
        assert conn.received_total == 0  # appends are counted, not recorded, in echo mode


# ---------------------------------------------------------------------------- wire control


@async_test
async def test_close_with_code_and_reason() -> None:
    async with MockUpstream() as mock:
        ws, conn = await ready(mock)
        conn.close(1011, "boom")
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (1011, "boom")
        await conn.wait_closed()
        assert conn.close_sent == (1011, "boom") and conn.close_code == 1011


@async_test
async def test_reset_drops_tcp_without_close_frame() -> None:
    async with MockUpstream() as mock:
        ws, conn = await ready(mock)
        conn.reset()
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
        assert info.value.rcvd is None  # no close frame: the client sees 1006
        await conn.wait_closed()
        assert conn.was_reset and conn.close_code is None


@async_test
async def test_binary_raw_text_fragments_and_ping() -> None:
    async with MockUpstream() as mock:
        ws, conn = await ready(mock)
        conn.send_binary(bytes(100))
        conn.send_raw_text("not json")
        conn.send({"no_type": True}, stamp=False)
        conn.send_fragments(['{"type":"x",', '"a":', "1}"])
        assert await asyncio.wait_for(ws.recv(), 2) == bytes(100)
        assert await asyncio.wait_for(ws.recv(), 2) == "not json"
        assert await recv(ws) == {"no_type": True}
        assert await recv(ws) == {"type": "x", "a": 1}
        pong = await ws.ping(b"p")
        await asyncio.wait_for(pong, 2)


class _FrameClient(WSListener):
    def __init__(self) -> None:
        self.frames: list[tuple[WSMsgType, bytes]] = []
        self.closed = asyncio.get_running_loop().create_future()

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        self.frames.append((frame.msg_type, frame.get_payload_as_bytes()))
        if frame.msg_type == WSMsgType.CLOSE and not self.closed.done():
            self.closed.set_result(frame.get_close_code())


@async_test
async def test_fragmented_client_messages_are_reassembled_and_bounded() -> None:
    async with MockUpstream(max_message_bytes=4096) as mock:
        transport, client = await ws_connect(_FrameClient, mock.url, extra_headers=AUTH)
        assert isinstance(client, _FrameClient)
        conn = await mock.wait_for_connection(0)
        text = b'{"type":"session.update","session":{"type":"realtime","instructions":"Hi"}}'
        transport.send(WSMsgType.TEXT, text[:10], fin=False)
        transport.send(WSMsgType.CONTINUATION, text[10:20], fin=False)
        transport.send(WSMsgType.PING, b"interleaved")
        transport.send(WSMsgType.CONTINUATION, text[20:], fin=True)
        transport.send(WSMsgType.BINARY, bytes(500), fin=False)
        transport.send(WSMsgType.CONTINUATION, bytes(460), fin=True)
        update = await conn.wait_for_event("session.update")
        assert update["session"]["instructions"] == "Hi"
        await conn.wait_for(lambda c: c.binary_frames)
        assert conn.binary_frames == [bytes(960)]
        # over the limit once reassembled → close 1009
        transport.send(WSMsgType.BINARY, bytes(3000), fin=False)
        transport.send(WSMsgType.CONTINUATION, bytes(3000), fin=True)
        code = await asyncio.wait_for(client.closed, 2)
        assert int(code.value if hasattr(code, "value") else code) == 1009
        transport.disconnect()


# ---------------------------------------------------------------------------- audio in


async def send_audio(ws: ClientConnection, pcm: bytes, chunk_ms: int = 20) -> None:
    step = chunk_ms * BYTES_PER_MS
    for i in range(0, len(pcm), step):
        await ws.send(append(pcm[i : i + step]))


@async_test
async def test_vad_simulation_turn() -> None:
    async with MockUpstream(vad=True, reply_audio_ms=200) as mock:
        ws, conn = await ready(mock)
        session = {"type": "realtime", "audio": {"input": {"transcription": {"model": "m"}}}}
        await send(ws, {"type": "session.update", "session": session})
        assert (await recv(ws))["type"] == "session.updated"
        await send_audio(ws, silence(500) + synth_speech(700) + silence(400))
        got = await recv_until(ws, "response.done")
        types = [e["type"] for e in got]
        start = types.index("response.created")
        assert types[:start] == [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
            "conversation.item.input_audio_transcription.delta",
            "conversation.item.input_audio_transcription.delta",
            "conversation.item.input_audio_transcription.completed",
        ]
        started, stopped = got[0], got[1]
        assert started["audio_start_ms"] == 500 - 300  # prefix padding, as the API reports
        assert 1180 <= stopped["audio_end_ms"] <= 1220
        item_id = started["item_id"]
        assert stopped["item_id"] == got[2]["item_id"] == got[3]["item"]["id"] == item_id
        assert got[3]["item"]["role"] == "user"
        transcript = got[start - 1]["transcript"]
        _rid, said = check_audio_reply(got[start:], 200)
        assert said == f"You said: {transcript}"
        assert conn.appends_received == 80


@async_test
async def test_vad_barge_in_cancels_the_paced_reply() -> None:
    async with MockUpstream(vad=True, pacing_ms=50, reply_audio_ms=2000) as mock:
        ws, _ = await ready(mock)
        await send_audio(ws, synth_speech(300) + silence(300))
        await recv_until(ws, "response.created")
        await send_audio(ws, synth_speech(200))
        got = await recv_until(ws, "input_audio_buffer.speech_started")
        cancelled = [e for e in got if e["type"] == "response.done"]
        assert [e["response"]["status"] for e in cancelled] == ["cancelled"]
        assert cancelled[0]["response"]["status_details"]["reason"] == "turn_detected"


@async_test
async def test_manual_commit() -> None:
    async with MockUpstream(reply=False) as mock:
        ws, conn = await ready(mock)
        await ws.send(append(bytes(960)))
        await send(ws, {"type": "input_audio_buffer.commit", "event_id": "c1"})
        err = await recv(ws)
        assert err["error"]["code"] == "input_audio_buffer_commit_empty"
        assert err["error"]["event_id"] == "c1"
        await ws.send(append(bytes(4800)))
        await send(ws, {"type": "input_audio_buffer.commit"})
        got = [await recv(ws) for _ in range(3)]
        assert [e["type"] for e in got] == [
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
        ]
        assert conn.input_audio_bytes == 5760 and conn.input_buffer_bytes == 0


# ---------------------------------------------------------------------------- lifecycle


@async_test
async def test_stop_leaves_no_tasks_or_connections() -> None:
    mock = MockUpstream(pacing_ms=50, reply_audio_ms=3000)
    await mock.start()
    ws, conn = await ready(mock)
    await send(ws, {"type": "response.create"})
    await conn.wait_for(lambda c: c._reply_tasks)
    conn.schedule(5000, events.speech_started(0, "item_u1"))
    mock.behaviour.never_answer_upgrade = True
    pending = asyncio.ensure_future(connect(mock, open_timeout=5))
    await mock.wait_until(lambda m: m.pending_upgrades == 1)
    await mock.stop()
    with pytest.raises((ConnectionClosed, OSError, InvalidHandshake)):
        await pending
    assert conn.closed and not conn._tasks and not conn._timers
    assert not mock._protocols and mock.pending_upgrades == 0
    # only the websockets client's own tasks may remain; none of the mock's
    mine = [
        t
        for t in asyncio.all_tasks()
        if "MockConnection" in getattr(t.get_coro(), "__qualname__", "")
        or "MockUpstream" in getattr(t.get_coro(), "__qualname__", "")
    ]
    assert mine == []
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), 2)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001


def test_mock_binds_loopback_only() -> None:
    with pytest.raises(ValueError):
        MockUpstream(host="0.0.0.0")
    with pytest.raises(TypeError):
        MockUpstream(no_such_option=True)


# ---------------------------------------------------------------------------- pure helpers


def test_builders_have_the_h4_shapes() -> None:
    created = events.response_created("resp_1")
    assert created["response"]["id"] == "resp_1"
    assert created["response"]["status"] == "in_progress"
    assert events.response_done("resp_1")["response"]["status"] == "completed"
    cancelled = events.response_done("resp_1", "cancelled")["response"]
    assert cancelled["status_details"]["type"] == "cancelled"
    assert events.audio_delta("resp_1", "item_a1", b"\x00\x00\xff\xff") == {
        "type": "response.output_audio.delta",
        "response_id": "resp_1",
        "item_id": "item_a1",
        "output_index": 0,
        "content_index": 0,
        "delta": "AAD//w==",
    }
    assert events.error("idle_timeout", "Session closed", "E1")["error"]["event_id"] == "E1"
    call = events.function_call_done("resp_1", "item_f1", "call_1", "get_time")
    assert call["arguments"] == "{}" and call["call_id"] == "call_1"
    assert events.speech_started(1000, "item_u1") == {
        "type": "input_audio_buffer.speech_started",
        "audio_start_ms": 1000,
        "item_id": "item_u1",
    }


def test_energy_vad_is_split_invariant() -> None:
    pcm = silence(300) + synth_speech(500) + silence(300) + synth_speech(100) + silence(250)
    whole = EnergyVad().feed(pcm)
    vad = EnergyVad()
    pieces = []
    i = 0
    for size in [1, 7, 959, 3, 4801, 2] * 100:
        if i >= len(pcm):
            break
        pieces += vad.feed(pcm[i : i + size])
        i += size
    assert pieces == whole
    assert [(e.kind, e.ms) for e in whole] == [
        ("start", 300),
        ("stop", 800),
        ("start", 1100),
        ("stop", 1200),
    ]
    assert len(synth_speech(250)) == 250 * BYTES_PER_MS
