"""§13.2 Lifecycle and wire: P-01 … P-17, end to end over real sockets."""

from __future__ import annotations

import asyncio
import re

from e2e_kit import (
    API_KEY,
    S0,
    A,
    audio_done,
    created,
    delta,
    done,
    http_request,
    now,
    speech_started,
    transcript_done,
    up_appended,
    up_of,
    up_types,
)

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


async def test_p01_upgrade_paths(env):
    async with env() as e:
        a = await e.connect("/openai?traceId=t1")
        c = await e.connect("/v1/agent/converse")
        b = await http_request(e.port, "/elsewhere")
        get = await http_request(e.port, "/openai", upgrade=False)
        for r in (b, get):
            assert r.status == 404
            assert r.body == b"not_found"
            assert r.headers["content-type"].startswith("text/plain")
        assert a.response.status == 101 and c.response.status == 101
        assert a.types() == ["Welcome"] and c.types() == ["Welcome"]
        await e.mock.wait_until(lambda m: m.opened == 2)
        await asyncio.sleep(0.1)
        assert e.mock.tcp_accepted == 2 and len(e.mock.upgrade_requests) == 2
    async with env(paths="/openai") as e:
        r = await http_request(e.port, "/v1/agent/converse")
        assert (r.status, r.body) == (404, b"not_found")
        ok = await e.connect("/openai")
        assert ok.types() == ["Welcome"]


async def test_p02_welcome_first_one_upstream(env):
    async with env() as e:
        c = await e.connect()
        u = await e.upstream_for(0)
        await asyncio.sleep(0.5)
        assert len(c.messages) == 1
        welcome = c.messages[0]
        assert welcome.kind == "text"
        assert welcome.obj is not None and set(welcome.obj) == {"type", "request_id"}
        assert welcome.obj["type"] == "Welcome"
        assert UUID4.fullmatch(welcome.obj["request_id"])
        assert len(e.mock.upgrade_requests) == 1 and e.mock.tcp_accepted == 1
        target, _ = e.mock.upgrade_requests[0]
        assert target == "/v1/realtime?model=gpt-realtime"
        assert u.header("Authorization") == f"Bearer {API_KEY}"
        assert u.header("OpenAI-Beta") is None
        assert u.received_total == 0


async def test_p03_trace_id(env):
    async with env(log_level="debug", confirming=True) as e:
        a = await e.ready(path="/openai?traceId=abc-123")
        b = await e.ready(path="/openai")
        a.send({"type": "InjectUserMessage", "content": "Hi"})
        await a.wait_type("History")
        a.close(1000)
        b.close(1000)
        await a.wait_closed()
        await b.wait_closed()
        await asyncio.sleep(0.1)
    ids = {a.request_id: "abc-123", b.request_id: b.request_id}
    seen = dict.fromkeys(ids, 0)
    for r in e.logs.records:
        cid = getattr(r, "connection_id", None)
        tid = getattr(r, "trace_id", None)
        if cid is None and tid is None:
            continue
        assert cid in ids, f"record with an unknown connection id: {r.__dict__}"
        assert tid == ids[cid], f"{r.name} {r.getMessage()!r}: trace_id {tid!r} for {cid}"
        for field in ("direction", "message_type"):
            assert hasattr(r, field), f"record without {field}: {r.getMessage()!r}"
        seen[cid] += 1
    assert all(n > 0 for n in seen.values()), seen
    # every record of the per-connection loggers is attributed (§12.2)
    for r in e.logs.records:
        if r.name.startswith(("fastproxy.connection", "fastproxy.protocol")):
            assert getattr(r, "connection_id", None) in ids, r.getMessage()


async def test_p04_settings_during_handshake_keepalive_dropped(env):
    async with env(mock={"handshake_delay_ms": 300}) as e:
        c = await e.connect()
        t0 = now()
        await asyncio.sleep(0.01)
        c.send({"type": "Settings"})
        c.send({"type": "KeepAlive"})
        await c.wait_type("SettingsApplied", timeout=5)
        u = await e.upstream_for(0)
        assert u.connected_at is not None and u.connected_at - t0 >= 0.25
        await e.quiet(c, u)
        assert up_types(u) == ["session.update"]
        assert c.types() == ["Welcome", "SettingsApplied"]


async def test_p05_upstream_refuses_handshake(env):
    async with env(mock={"refuse_status": 401}) as e:
        c = await e.connect()
        await c.wait_closed()
        assert c.types() == ["Welcome", "Error"]
        err = c.json()[1]
        assert err["code"] == "upstream_unavailable"
        assert "401" in err["description"] and API_KEY not in err["description"]
        assert set(err) == {"type", "code", "description"}
        assert c.close_code == 1011
        assert e.mock.refused == 1 and e.mock.opened == 0


async def test_p06_upstream_connect_timeout(env):
    async with env(upstream_connect_timeout_ms=500, mock={"never_answer_upgrade": True}) as e:
        t0 = now()
        c = await e.connect()
        await c.wait_closed(timeout=5)
        assert c.types() == ["Welcome", "Error"]
        err_msg = c.messages[1]
        assert err_msg.obj["code"] == "upstream_unavailable"
        assert "timeout" in err_msg.obj["description"]
        assert 0.45 <= err_msg.t - t0 <= 1.0
        assert c.close_code == 1011


async def test_p07_upstream_closes_before_ready(env):
    async with env(mock={"answer_session_update": False}) as e:
        c = await e.connect()
        u = await e.upstream_for(0)
        c.send(S0)
        await u.wait_for_event("session.update")
        u.close(1011, "boom")
        await c.wait_closed()
        assert c.types() == ["Welcome", "Error"]
        err = c.json()[1]
        assert err["code"] == "upstream_unavailable"
        assert "1011" in err["description"] and "boom" in err["description"]
        assert c.close_code == 1011


async def test_p08_normal_upstream_close_after_ready(env):
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        c.up.close(1000)
        await c.wait_closed()
        assert c.close_code == 1000
        assert c.types(mark) == []


async def test_p09_upstream_drop_after_ready(env):
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        c.up.reset()
        await c.wait_closed()
        assert c.types(mark) == ["Error"]
        err = c.json(mark)[0]
        assert err["code"] == "upstream_closed" and "1006" in err["description"]
        assert c.close_code == 1011


async def test_p10_client_closes(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        count = u.received_total
        t0 = now()
        c.close(1001)
        await u.wait_closed(timeout=1.0)
        assert u.close_code == 1000
        assert u.closed_at is not None and u.closed_at - t0 <= 1.0
        assert u.received_total == count


async def test_p11_client_leaves_during_handshake(env):
    async with env(mock={"handshake_delay_ms": 500}) as e:
        c = await e.connect()
        await asyncio.sleep(0.05)
        c.close(1000)
        await c.wait_closed()
        # the held upgrade is abandoned: the TCP connection closes, or opens then closes at once
        await e.mock.wait_until(lambda m: m.tcp_closed >= 1, timeout=2.0)
        for u in e.mock.connections:
            assert u.received_total == 0
            if u.connected_at is not None:
                await u.wait_closed(timeout=1.0)
                assert u.closed_at - u.connected_at < 0.3
        c2 = await e.ready()
        assert c2.up.index == len(e.mock.connections) - 1
        assert up_types(c2.up) == ["session.update"]


async def test_p12_drain(env):
    async with env(drain_timeout_ms=500) as e:
        c = await e.ready()
        u = c.up
        t0 = now()
        drain = e.spawn(e.server.drain())
        await asyncio.sleep(0.1)
        r = await http_request(e.port, "/openai")
        assert (r.status, r.body) == (503, b"draining")
        await asyncio.sleep(max(0.0, 0.2 - (now() - t0)))
        u.send(speech_started("item_u1", 10))
        await c.wait_type("UserStartedSpeaking")
        await c.wait_closed(timeout=3)
        assert c.close_code == 1001
        assert 0.45 <= c.close_at - t0 <= 1.0
        await u.wait_closed(timeout=3)
        assert u.close_code == 1001
        await asyncio.wait_for(drain, 5)


async def test_p13_frame_type_contract(env):
    async with env(confirming=True) as e:
        pcm = A(320)
        e.on_response_create(
            [
                created("resp_1"),
                delta("resp_1", "item_a1", pcm),
                audio_done("resp_1", "item_a1"),
                transcript_done("resp_1", "item_a1", "Hi"),
                done("resp_1"),
            ]
        )
        c = await e.ready()
        mark = c.mark()
        c.send({"type": "InjectUserMessage", "content": "Say hi"})
        await c.wait(lambda c: c.of("History", mark) and len(c.of("History", mark)) >= 2)
        await e.quiet(c, window=0.3)
        after = c.messages[mark:]
        binaries = [m for m in after if m.kind == "binary"]
        assert [m.data for m in binaries] == [pcm]
        for m in after:
            if m.kind == "text":
                assert m.obj is not None and isinstance(m.obj.get("type"), str)


async def test_p14_fragmented_messages(env):
    async with env() as e:
        c = await e.connect()
        u = await e.upstream_for(0)
        raw = b'{"type":"Settings","agent":{"think":{"prompt":"Be brief."}}}'
        c.send_fragments([raw[:10], raw[10:20], raw[20:]])
        await c.wait_type("SettingsApplied")
        audio = A(960)
        c.send_fragments([audio[:500], audio[500:]], binary=True)
        await u.wait_for_event("input_audio_buffer.append")
        await e.quiet(u, window=0.3)
        updates = up_of(u, "session.update")
        assert len(updates) == 1
        assert updates[0]["session"]["instructions"] == "Be brief."
        assert up_appended(u) == [audio]


async def test_p15_oversized_client_message(env):
    limit = 1048576
    async with env(max_client_message_bytes=limit) as e:
        c = await e.ready()
        u = c.up
        mark = c.mark()
        c.send_binary(A(limit + 1))
        await c.wait_closed()
        assert c.types(mark) == ["Error"]
        assert c.json(mark)[0]["code"] == "message_too_large"
        assert c.close_code == 1009
        await u.wait_closed()
        assert u.close_code == 1000
        assert up_appended(u) == []
        c2 = await e.ready()
        data = A(limit)
        c2.send_binary(data)
        await c2.up.wait_for(lambda u: sum(map(len, up_appended(u))) >= limit)
        assert b"".join(up_appended(c2.up)) == data
        assert not c2.closed


async def test_p16_empty_and_json_looking_frames(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        mark, before = c.mark(), u.received_total
        c.send_binary(b"")
        c.send_text(b"")
        looks_like_json = b'{"type":"Settings" }'
        assert len(looks_like_json) == 20
        c.send_binary(looks_like_json)
        await u.wait_for_event("input_audio_buffer.append")
        await e.quiet(c, u)
        assert u.received_total == before + 1
        assert up_appended(u) == [looks_like_json]
        assert len(up_of(u, "session.update")) == 1
        assert c.types(mark) == []


async def test_p17_upstream_binary_message(env):
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        c.up.send_binary(bytes(range(100)))
        await e.quiet(c)
        assert c.types(mark) == []
        assert c.stats.violations["unexpected_upstream_binary"] == 1
