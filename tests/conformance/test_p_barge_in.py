"""§13.10 Barge-in: P-102 … P-107, end to end over real sockets.

Truncation points are compared with the interval the mock actually left between its first audio
delta and its ``speech_started`` (±20 ms, the scenarios' tolerance), and with the nominal value
more loosely, because the scheduler of a busy 2-core machine can shift a scripted send.
"""

from __future__ import annotations

import asyncio

from e2e_kit import (
    S0,
    A,
    created,
    delta,
    done,
    fcall,
    now,
    send_at,
    speech_started,
    up_of,
    up_types,
)

TOLERANCE_MS = 20
LOOSE_MS = 80


async def sleep_until(t):
    await asyncio.sleep(max(0.0, t - now()))


def truncate(item_id, audio_end_ms):
    return {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": audio_end_ms,
    }


def assert_truncate(event, item_id, measured_ms, nominal_ms):
    assert {k: v for k, v in event.items() if k != "audio_end_ms"} == {
        k: v for k, v in truncate(item_id, 0).items() if k != "audio_end_ms"
    }
    end = event["audio_end_ms"]
    assert isinstance(end, int)
    assert abs(end - measured_ms) <= TOLERANCE_MS, (end, measured_ms)
    assert abs(end - nominal_ms) <= LOOSE_MS, (end, nominal_ms)


async def barge_in_p102(e):
    """P-102 up to the barge-in; returns (client, t0, measured elapsed ms)."""
    c = await e.ready()
    u = c.up
    u.send(created("resp_1"))
    await asyncio.sleep(0.05)
    mark = c.mark()
    t0 = send_at(
        u,
        delta("resp_1", "item_a1", A(48000)),
        delta("resp_1", "item_a1", A(48000, offset=48000)),
    )
    await c.wait_binaries(2, since=mark)
    await sleep_until(t0 + 0.7)
    t_speech = send_at(u, speech_started("item_u1", 700))
    await c.wait_type("UserStartedSpeaking", since=mark)
    await u.wait_for_event("conversation.item.truncate")
    return c, mark, t0, (t_speech - t0) * 1000


async def test_p102_truncation_maths(env):
    async with env() as e:
        c, mark, t0, measured = await barge_in_p102(e)
        u = c.up
        started = c.first("UserStartedSpeaking", mark)
        assert 0.69 <= started.t - t0 <= 0.7 + 0.35
        await sleep_until(t0 + 0.75)
        u.send(delta("resp_1", "item_a1", A(960)))
        await sleep_until(t0 + 0.8)
        u.send(done("resp_1", "cancelled"))
        await c.wait_type("AgentAudioDone", since=mark)
        await e.quiet(c, u)
        (event,) = up_of(u, "conversation.item.truncate")
        assert_truncate(event, "item_a1", measured, 700)
        assert up_of(u, "response.cancel") == []
        assert len(c.binaries(mark)) == 2  # the t=750 delta was not forwarded
        assert len(c.of("AgentAudioDone", mark)) == 1
        assert c.stats.barge_ins == 1


async def test_p103_bound_by_bytes_sent_grace(env):
    settings = {**S0, "audio": {"output": {"encoding": "linear16", "sample_rate": 16000}}}
    async with env() as e:
        for at, barge_in in ((0.6, True), (0.8, False)):
            c = await e.ready(settings)
            u = c.up
            u.send(created("resp_1"))
            await asyncio.sleep(0.05)
            mark = c.mark()
            t0 = send_at(u, delta("resp_1", "item_a1", A(9600)), done("resp_1"))
            await c.wait_type("AgentAudioDone", since=mark)
            assert [len(b) for b in c.binaries(mark)] == [6400]
            await sleep_until(t0 + at)
            u.send(speech_started("item_u1", 900))
            await c.wait_type("UserStartedSpeaking", since=mark)
            await e.quiet(u)
            truncates = up_of(u, "conversation.item.truncate")
            if barge_in:
                assert truncates == [truncate("item_a1", 200)]
                assert c.stats.barge_ins == 1
            else:
                assert truncates == []
                assert c.stats.barge_ins == 0
            assert up_of(u, "response.cancel") == []
            c.close()


async def test_p104_manual_mode_cancels(env):
    async with env(turn_detection="manual") as e:
        c = await e.ready()
        u = c.up
        u.send(created("resp_1"))
        await asyncio.sleep(0.05)
        mark = c.mark()
        t0 = send_at(u, delta("resp_1", "item_a1", A(4800)))
        await c.wait_binaries(1, since=mark)
        await sleep_until(t0 + 0.05)
        t_speech = send_at(u, speech_started())
        await u.wait_for_event("conversation.item.truncate")
        control = [ev for ev in up_types(u, appends=False) if ev != "session.update"]
        assert control == ["response.cancel", "conversation.item.truncate"]
        assert up_of(u, "response.cancel") == [{"type": "response.cancel", "response_id": "resp_1"}]
        (event,) = up_of(u, "conversation.item.truncate")
        assert_truncate(event, "item_a1", (t_speech - t0) * 1000, 50)


async def test_p105_no_barge_in_without_agent_audio(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        u.send(created("resp_1"))
        mark = c.mark()
        u.send(speech_started())
        await c.wait_type("UserStartedSpeaking", since=mark)
        await e.quiet(c, u)
        assert c.types(mark) == ["UserStartedSpeaking"]
        assert up_types(u) == ["session.update"]
        assert c.stats.barge_ins == 0


async def test_p106_barge_in_on_a_scripted_response(env):
    async with env(confirming=True) as e:
        sent = []
        e.on_response_create(
            [
                created("resp_2"),
                lambda conn, req: sent.append(now()),
                delta("resp_2", "item_s1", A(48000)),
            ]
        )
        c = await e.ready()
        u = c.up
        mark = c.mark()
        c.send({"type": "InjectAgentMessage", "message": "Please hold."})
        await c.wait_binaries(1, since=mark)
        await sleep_until(sent[0] + 0.3)
        u.send(speech_started())
        await u.wait_for_event("response.cancel")
        await e.quiet(u)
        assert up_of(u, "response.cancel") == [{"type": "response.cancel", "response_id": "resp_2"}]
        assert up_of(u, "conversation.item.truncate") == []
        assert c.stats.barge_ins == 1


async def test_p107_interrupted_responses_request_no_functions(env):
    async with env() as e:
        c, mark, _, _ = await barge_in_p102(e)
        u = c.up
        u.send(fcall("resp_1", "item_f7", "call_7", "get_time"))
        u.send(done("resp_1", "cancelled"))
        await c.wait_type("AgentAudioDone", since=mark)
        await e.quiet(c)
        assert c.of("FunctionCallRequest", mark) == []
        assert len(c.of("AgentAudioDone", mark)) == 1
