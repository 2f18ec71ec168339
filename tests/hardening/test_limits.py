"""Resource limits end to end, each with its metric (PROTOCOL.md §11.3, §3.4, W7, §3.6).

max sessions → 503 ``too_many_sessions``; per address → 429 ``too_many_sessions_from_address``
(``fastproxy_sessions_total{outcome="refused_limit"}``); a client message over
``max_client_message_bytes`` → ``Error message_too_large`` + 1009; held-queue overflow →
``Error client_queue_overflow`` + 1008 (``fastproxy_protocol_violations_total{kind=...}``); a
client that stops reading → its send buffer passes ``send_buffer_max_bytes`` → 1008, and an
upstream that stops reading → ``Error upstream_closed`` + 1011. In every case the pair is torn
down completely, even when the peer never reads again (the close handshake is dropped after 2 s).
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from e2e_kit import LOOP_KINDS, A, created, delta, http_request, now, run
from net_kit import HEnv, MiB, wait_torn_down

LOOPS = pytest.mark.parametrize("loop_kind", LOOP_KINDS)
REFUSED = ("fastproxy_sessions_total", "refused_limit")


async def _max_sessions(loop_kind: str) -> None:
    async with HEnv(loop_kind, max_sessions=2) as e:
        first = await e.ready()
        await e.ready()
        r = await http_request(e.port, "/openai")
        assert (r.status, r.body) == (503, b"too_many_sessions")
        assert e.metric(REFUSED[0], outcome=REFUSED[1]) == 1
        assert len(e.mock.connections) == 2  # no upstream for the refused client
        conn = first.conn
        first.close()
        await wait_torn_down(e, [conn])
        third = await e.ready()  # room again once a pair has ended (§11.3)
        assert third.conn is not None
        assert e.metric("fastproxy_sessions_active") == 2


@LOOPS
def test_max_sessions_503(loop_kind: str) -> None:
    run(_max_sessions(loop_kind), loop_kind)


async def _per_address(loop_kind: str) -> None:
    async with HEnv(loop_kind, max_sessions_per_address=1) as e:
        c = await e.ready()
        r = await http_request(e.port, "/openai")
        assert (r.status, r.body) == (429, b"too_many_sessions_from_address")
        assert e.metric(REFUSED[0], outcome=REFUSED[1]) == 1
        conn = c.conn
        c.close()
        await wait_torn_down(e, [conn])
        await e.ready()


@LOOPS
def test_per_address_429(loop_kind: str) -> None:
    run(_per_address(loop_kind), loop_kind)


async def _message_too_large(loop_kind: str, kind: str) -> None:
    limit = 65536
    async with HEnv(loop_kind, max_client_message_bytes=limit) as e:
        c = await e.ready()
        if kind == "text":
            c.send_text(b'{"type":"InjectUserMessage","content":"' + b"x" * limit + b'"}')
        else:
            c.send_binary(A(limit + 2))
        err = await c.wait_type("Error")
        assert err["code"] == "message_too_large"
        await c.wait_closed()
        assert (c.close_code, c.close_reason) == (1009, "message_too_large")
        await c.up.wait_closed()
        assert c.up.close_code == 1000
        assert not c.up.events_of("input_audio_buffer.append")
        await wait_torn_down(e)
        assert e.metric("fastproxy_protocol_violations_total", kind="message_too_large") == 1


@LOOPS
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_message_too_large_1009(loop_kind: str, kind: str) -> None:
    run(_message_too_large(loop_kind, kind), loop_kind)


async def _queue_overflow(loop_kind: str, bound: str) -> None:
    settings = {"queue_max_messages": 10} if bound == "messages" else {"queue_max_bytes": 10000}
    async with HEnv(loop_kind, mock={"answer_session_update": False}, **settings) as e:
        c = await e.connect()
        u = await e.upstream_of(c)
        c.send({"type": "Settings"})
        await u.wait_for_event("session.update")
        for k in range(10):
            c.send_binary(A(960, 960 * k))
        await e.quiet(c)
        c.send_binary(A(960, 9600))  # the 11th: over either bound
        err = await c.wait_type("Error")
        assert err["code"] == "client_queue_overflow"
        await c.wait_closed()
        assert (c.close_code, c.close_reason) == (1008, "client_queue_overflow")
        await u.wait_closed()
        assert u.close_code == 1000 and not u.events_of("input_audio_buffer.append")
        await wait_torn_down(e)
        assert e.metric("fastproxy_protocol_violations_total", kind="client_queue_overflow") == 1


@LOOPS
@pytest.mark.parametrize("bound", ["messages", "bytes"])
def test_held_queue_overflow_1008(loop_kind: str, bound: str) -> None:
    run(_queue_overflow(loop_kind, bound), loop_kind)


async def _client_send_buffer(loop_kind: str) -> None:
    """The client stops reading for good while the agent talks: its send buffer passes the
    limit → close 1008 (upstream 1000). The close frame can never be read, so the proxy drops
    the TCP connection after 2 s (before the fix it waited forever in a graceful close that
    needed the peer to drain its buffer: the pair leaked)."""
    settings = {"max_client_message_bytes": 65536, "send_buffer_max_bytes": 262144}
    async with HEnv(loop_kind, **settings) as e:
        c = await e.ready()
        conn, u = c.conn, c.up
        c.transport.underlying_transport.pause_reading()  # never resumed
        u.send(created("resp_1"))
        event = msgspec.json.encode(delta("resp_1", "it_1", A(480_000)))  # 10 s per delta
        deadline = now() + 10
        while not u.closed and now() < deadline:
            if u.transport.underlying_transport.get_write_buffer_size() < MiB:
                u.send_raw_text(event)
            await asyncio.sleep(0.002)
        await u.wait_closed()
        assert u.close_code == 1000
        t_closed = now()
        await wait_torn_down(e, [conn], timeout=5)
        assert now() - t_closed < 3.5
        assert conn.outcome == "error"
        assert (
            e.metric("fastproxy_protocol_violations_total", kind="client_send_buffer_overflow") == 1
        )
        assert e.metric("fastproxy_sessions_total", outcome="error") == 1
        assert e.metric("fastproxy_sessions_active") == 0


@LOOPS
def test_client_send_buffer_over_the_limit_1008(loop_kind: str) -> None:
    run(_client_send_buffer(loop_kind), loop_kind)


async def _upstream_not_reading(loop_kind: str) -> None:
    """The upstream stops reading while the client sends maximal (1 MiB) messages. The proxy
    stops reading the client once the upstream write buffer passes its high-water mark, so the
    buffer stays bounded by the limit plus one append — which the kernel's socket buffers
    mostly absorb, so the byte limit itself is rarely what ends the stall: the stall timeout
    does (README "Hardening"). Either way §3.4's upstream row: Error upstream_closed, client
    1011, upstream 1011."""
    settings = {"max_client_message_bytes": 1048576, "send_buffer_max_bytes": 262144}
    async with HEnv(loop_kind, ping_interval_ms=600, ping_timeout_ms=600, **settings) as e:
        c = await e.ready()
        conn, u = c.conn, c.up
        u.stop_reading()
        frame = A(1_000_000)
        t0, peak = now(), 0
        while not c.closed and c.close_code is None and now() - t0 < 8:
            c.send_binary(frame)
            upstream = conn.upstream.underlying_transport
            if not upstream.is_closing():
                peak = max(peak, upstream.get_write_buffer_size())
            await asyncio.sleep(0.005)
        err = await c.wait_type("Error")
        assert err["code"] == "upstream_closed"
        await c.wait_closed()
        assert (c.close_code, c.close_reason) == (1011, "upstream_closed")
        assert conn.upstream.close_handshake.sent.code == 1011
        await wait_torn_down(e, [conn], timeout=5)
        assert peak <= 262144 + 1_400_000, f"upstream write buffer reached {peak}"
        assert e.metric("fastproxy_sessions_total", outcome="upstream_failed") == 1


@LOOPS
def test_upstream_not_reading_1011(loop_kind: str) -> None:
    run(_upstream_not_reading(loop_kind), loop_kind, timeout=30)
