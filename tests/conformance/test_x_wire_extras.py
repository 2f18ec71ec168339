"""Socket-level rules of PROTOCOL.md that no §13 scenario exercises end to end (``test_x_*``).

W6/W7 on both legs (fragments, limits), W9 ordering across the audio fast path and the control
path, the §3.1 check order, §3.2 failures other than HTTP statuses, §3.4 send-buffer overflow and
the §3.6 close-handshake timeout. A known deviation is reported with ``pytest.xfail`` naming the
bug at the point where the behaviour differs; once the product is fixed the test simply passes.
"""

from __future__ import annotations

import asyncio
import socket

import msgspec
import pytest
from e2e_kit import (
    S0,
    A,
    audio_done,
    created,
    delta,
    done,
    http_request,
    now,
    speech_stopped,
    transcript_done,
    up_appended,
    up_types,
)


async def test_x_far_oversized_frame_gets_message_too_large(env):
    """W7 / §10.4: any client message over ``max_client_message_bytes`` → ``Error``
    ``message_too_large``, close 1009 with reason ``message_too_large``, upstream 1000."""
    limit = 1048576
    async with env(max_client_message_bytes=limit) as e:
        c = await e.ready()
        mark = c.mark()
        c.send_binary(A(3 * limit))  # one frame beyond picows' max_frame_size (2 × limit)
        await c.wait_closed()
        await c.up.wait_closed()
        assert c.close_code == 1009
        assert c.up.close_code == 1000
        assert up_appended(c.up) == []
        if c.types(mark) != ["Error"] or c.close_reason != "message_too_large":
            pytest.xfail(
                "KNOWN BUG: a frame larger than 2 × max_client_message_bytes is refused by "
                "picows at its header (server.py max_frame_size): the client gets close 1009 "
                f"with reason {c.close_reason!r} and no Error message_too_large"
            )
        assert c.json(mark)[0]["code"] == "message_too_large"


async def test_x_fragmented_client_message_over_the_limit(env):
    async with env(max_client_message_bytes=1048576) as e:
        c = await e.ready()
        mark = c.mark()
        c.send_fragments([b"x" * 600000, b"y" * 600000])
        await c.wait_closed()
        assert c.types(mark) == ["Error"]
        assert c.json(mark)[0]["code"] == "message_too_large"
        assert (c.close_code, c.close_reason) == (1009, "message_too_large")
        await c.up.wait_closed()
        assert c.up.close_code == 1000


async def test_x_upstream_message_over_the_limit(env):
    big = b'{"type":"x","p":"' + b"a" * 1100000 + b'"}'
    async with env(max_upstream_message_bytes=1048576) as e:
        # after READY: upstream_closed, client 1011, upstream 1009 (§3.6)
        c = await e.ready()
        mark = c.mark()
        c.up.send_raw_text(big)
        await c.wait_closed()
        await c.up.wait_closed()
        assert c.types(mark) == ["Error"]
        assert c.json(mark)[0]["code"] == "upstream_closed"
        assert c.close_code == 1011 and c.up.close_code == 1009
        # fragmented, after READY
        c = await e.ready()
        mark = c.mark()
        c.up.send_fragments([big[:600000], big[600000:]])
        await c.wait_closed()
        await c.up.wait_closed()
        assert c.json(mark)[0]["code"] == "upstream_closed"
        assert c.close_code == 1011 and c.up.close_code == 1009
        # before READY: upstream_unavailable
        c = await e.connect()
        u = await e.upstream_of(c)
        u.send_raw_text(big)
        await c.wait_closed()
        await u.wait_closed()
        assert c.types() == ["Welcome", "Error"]
        assert c.json()[1]["code"] == "upstream_unavailable"
        assert c.close_code == 1011 and u.close_code == 1009


async def test_x_fragmented_upstream_messages(env):
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        raw = msgspec.json.encode(delta("resp_x", "item_x", A(960)))
        c.up.send_fragments([raw[:100], raw[100:500], raw[500:]])
        c.up.send_fragments([b'{"type":"input_audio_buffer.speech_', b'started","item_id":"u1"}'])
        c.up.send_fragments([b"\x00" * 10, b"\x01" * 10], binary=True)
        await c.wait_type("UserStartedSpeaking", since=mark)
        await e.quiet(c)
        assert c.types(mark) == ["AgentStartedSpeaking", "<binary>", "UserStartedSpeaking"]
        assert c.binaries(mark) == [A(960)]
        assert c.stats.violations["unexpected_upstream_binary"] == 1


async def test_x_order_across_audio_and_control_paths(env):
    """W9: appends and JSON-caused events keep the client's order, in READY and when held."""
    sequence = [A(960), {"type": "InjectUserMessage", "content": "x"}, A(960, 960), A(960, 1920)]
    expected = [
        "session.update",
        "input_audio_buffer.append",
        "conversation.item.create",
        "input_audio_buffer.append",
        "input_audio_buffer.append",
    ]
    async with env() as e:
        c = await e.ready()
        for m in sequence:
            c.send(m)
        await c.up.wait_for_event("input_audio_buffer.append", nth=2)
        assert up_types(c.up) == expected
    async with env(mock={"session_updated_delay_ms": 100}) as e:
        c = await e.connect()
        u = await e.upstream_of(c)
        c.send(S0)
        for m in sequence:
            c.send(m)
        await u.wait_for_event("input_audio_buffer.append", nth=2)
        assert up_types(u) == expected
        assert b"".join(up_appended(u)) == A(2880)


async def test_x_order_of_agent_signals_across_paths(env):
    """W9 on the way back: deltas (fast path once armed) and mapped events keep their order."""
    async with env() as e:
        c = await e.ready()
        u = c.up
        mark = c.mark()
        u.send(created("resp_1"))
        u.send(delta("resp_1", "item_a1", A(960)))
        u.send(transcript_done("resp_1", "item_a1", "Hello"))
        u.send(delta("resp_1", "item_a1", A(960, 960)))
        u.send(speech_stopped())
        u.send(delta("resp_1", "item_a2", A(960, 1920)))
        u.send(delta("resp_1", "item_a1", A(960, 2880)))
        u.send(audio_done("resp_1", "item_a1"))
        u.send(done("resp_1"))
        await c.wait_type("AgentAudioDone", since=mark)
        await e.quiet(c)
        assert c.types(mark) == [
            "AgentStartedSpeaking",
            "<binary>",
            "ConversationText",
            "History",
            "<binary>",
            "UtteranceEnd",
            "<binary>",
            "<binary>",
            "AgentAudioDone",
        ]
        assert c.binaries(mark) == [A(960, 960 * i) for i in range(4)]


async def test_x_upgrade_check_order(env):
    """§3.1: path, draining, Origin, authentication, limits — the first failure answers."""
    settings = {
        "auth": "token",
        "auth_tokens": "t0k",
        "allowed_origins": "https://a.example",
        "max_sessions": 1,
    }
    async with env(**settings) as e:
        await e.ready(headers={"Authorization": "Token t0k"})
        evil = {"Origin": "https://evil.example"}
        r = await http_request(e.port, "/openai", evil)
        assert (r.status, r.body) == (403, b"origin_not_allowed")
        r = await http_request(e.port, "/openai", {"Origin": "https://a.example"})
        assert (r.status, r.body) == (401, b"unauthorized")
        r = await http_request(e.port, "/openai", {"Authorization": "TOKEN t0k"})
        assert (r.status, r.body) == (503, b"too_many_sessions")
        r = await http_request(e.port, "/elsewhere", evil)
        assert (r.status, r.body) == (404, b"not_found")
        drain = e.spawn(e.server.drain())
        await asyncio.sleep(0.05)
        r = await http_request(e.port, "/openai", evil)
        assert (r.status, r.body) == (503, b"draining")
        r = await http_request(e.port, "/openai", upgrade=False)
        assert (r.status, r.body) == (404, b"not_found")
        drain.cancel()


async def test_x_non_get_request_on_a_path_is_404(env):
    """§3.1 check 1: a non-upgrade request on a configured path → 404 ``not_found``."""
    async with env() as e:
        r = await http_request(e.port, "/openai", upgrade=False, method="POST")
        if r.status != 404:
            pytest.xfail(
                f"KNOWN BUG: POST /openai is answered {r.status} {r.body!r} by picows before "
                "ProxyServer.route runs, instead of 404 not_found"
            )
        assert r.body == b"not_found"


async def test_x_upstream_connection_refused(env):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more
    async with env(upstream_url=f"ws://127.0.0.1:{port}/v1/realtime") as e:
        c = await e.connect()
        await c.wait_closed()
        assert c.types() == ["Welcome", "Error"]
        err = c.json()[1]
        assert err["code"] == "upstream_unavailable"
        assert "sk-test" not in err["description"]
        assert (c.close_code, c.close_reason) == (1011, "upstream_unavailable")


async def test_x_client_send_buffer_overflow(env):
    """§3.4: client send buffer over ``send_buffer_max_bytes`` → client 1008, upstream 1000."""
    async with env(send_buffer_max_bytes=65536) as e:
        c = await e.ready()
        u = c.up
        u.send(created("resp_1"))
        c.transport.underlying_transport.pause_reading()
        event = msgspec.json.encode(delta("resp_1", "item_a1", A(48000)))
        deadline = now() + 5
        while not u.closed and now() < deadline:
            if u.transport.underlying_transport.get_write_buffer_size() < 1 << 20:
                u.send_raw_text(event)
            await asyncio.sleep(0.001)
        await u.wait_closed()
        assert u.close_code == 1000
        c.transport.underlying_transport.resume_reading()
        await c.wait_closed()
        assert c.close_code == 1008


async def test_x_unanswered_close_handshake_is_dropped_after_2_s(env):
    async with env() as e:
        c = await e.ready()
        c.answer_close = False
        t0 = now()
        c.up.close(1000)
        await c.wait(lambda c: c.close_code is not None)
        assert c.close_code == 1000
        await c.wait_closed(timeout=4)
        assert 1.9 <= c.disconnected_at - t0 <= 2.6


async def test_x_pings_are_answered(env):
    async with env() as e:
        c = await e.ready()
        rtts = await asyncio.wait_for(c.transport.measure_roundtrip_time(3), 5)
        assert len(rtts) == 3
