"""§13.9 Upstream events: P-92 … P-101, end to end over real sockets."""

from __future__ import annotations

import asyncio
import logging

from e2e_kit import (
    A,
    audio_done,
    created,
    delta,
    done,
    fcall,
    now,
    text_done,
    transcript_delta,
    transcript_done,
    up_types,
)
from spec_examples import (
    P94_CLIENT_TYPES,
    P95_CLIENT_MESSAGES,
    P95_ITEM_ADDED,
    P97_SPEECH,
    P98_TRANSCRIPTION_COMPLETED,
    P98_USER_TEXT,
    p98_transcript,
)

from fastproxy.testing import events as ev


async def assert_slot_busy(c, busy):
    """Probe the slot with an InjectAgentMessage (T6/T7)."""
    mark = c.mark()
    c.send({"type": "InjectAgentMessage", "message": "Probe."})
    first = await c.wait_msg(
        lambda m: m.type in ("InjectionRefused", "ConversationText"), since=mark
    )
    assert (first.type == "InjectionRefused") == busy, first.obj


async def test_p92_assistant_text_once_per_item(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        u.send(created("resp_1"))
        mark = c.mark()
        u.send(transcript_done("resp_1", "item_a1", "Hi, how can I help?"))
        u.send(text_done("resp_1", "item_a1", "Hi, how can I help?"))
        u.send(text_done("resp_1", "item_a2", "   "))
        await c.wait_type("ConversationText", since=mark)
        await e.quiet(c)
        assert c.of("ConversationText", mark) == [
            {"type": "ConversationText", "role": "assistant", "content": "Hi, how can I help?"}
        ]
        await assert_slot_busy(c, True)


async def test_p93_agent_audio_and_agent_started_speaking(env):
    async with env(confirming=True) as e:
        t0_box = []

        async def at(seconds):
            await asyncio.sleep(max(0.0, t0_box[0] + seconds - now()))

        e.on_response_create(
            [
                created("resp_1"),
                lambda conn, req: at(0.3),
                transcript_delta("resp_1", "item_a1", "Hel"),
                lambda conn, req: at(0.4),
                {**delta("resp_1", "item_a1", b""), "delta": "AAD//w=="},
                {**delta("resp_1", "item_a1", b""), "delta": ""},
                delta("resp_1", "item_a1", b"\x01\x02\x03\x04"),
            ]
        )
        c = await e.ready()
        mark = c.mark()
        t0_box.append(now())
        c.send({"type": "InjectUserMessage", "content": "Hi"})
        await c.wait_binaries(2, since=mark)
        await e.quiet(c)
        after = [m for m in c.messages[mark:] if m.type not in ("ConversationText", "History")]
        assert [m.type or m.kind for m in after] == ["AgentStartedSpeaking", "binary", "binary"]
        assert [m.data for m in after[1:]] == [b"\x00\x00\xff\xff", b"\x01\x02\x03\x04"]
        started = after[0].obj
        assert set(started) == {"type", "total_latency", "tts_latency", "ttt_latency"}
        for key in ("total_latency", "tts_latency", "ttt_latency"):
            assert isinstance(started[key], int | float) and started[key] >= 0
        assert abs(started["total_latency"] - 0.4) <= 0.15
        assert abs(started["ttt_latency"] - 0.3) <= 0.15
        assert (
            abs(started["total_latency"] - started["ttt_latency"] - started["tts_latency"]) <= 0.002
        )


async def test_p94_agent_audio_done_exactly_once_per_response(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        mark = c.mark()
        u.send(created("resp_1"))
        u.send(delta("resp_1", "item_a1", A(960)))
        u.send(audio_done("resp_1", "item_a1"))
        u.send(text_done("resp_1", "item_a1", "Here."))
        u.send(done("resp_1"))
        await c.wait_type("AgentAudioDone", since=mark)
        u.send(created("resp_2"))
        u.send(fcall("resp_2", "item_f1", "call_1", "get_time"))
        u.send(done("resp_2"))
        await c.wait_type("AgentAudioDone", count=2, since=mark)
        u.send(created("resp_3"))
        u.send(text_done("resp_3", "item_a3", "Done."))
        u.send(done("resp_3"))
        await c.wait_type("AgentAudioDone", count=3, since=mark)
        await e.quiet(c)
        types = [t for t in c.types(mark) if t != "History"]
        assert types == P94_CLIENT_TYPES


async def test_p95_function_call_request_and_agent_thinking(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        u.send(created("resp_1"))
        mark = c.mark()
        u.send(P95_ITEM_ADDED)
        u.send(fcall("resp_1", "item_f1", "call_1", "get_current_time", "{}"))
        await c.wait_type("FunctionCallRequest", since=mark)
        await e.quiet(c)
        assert c.json(mark) == P95_CLIENT_MESSAGES


async def test_p96_malformed_function_call(env):
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        c.up.send({"type": "response.function_call_arguments.done", "arguments": "{}"})
        await e.quiet(c)
        assert c.of("FunctionCallRequest", mark) == []
        assert c.stats.violations["malformed_upstream_event"] == 1


async def test_p97_speech_events(env):
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        for event in P97_SPEECH:
            c.up.send(event)
        await c.wait_type("UtteranceEnd", count=2, since=mark)
        await e.quiet(c, c.up)
        assert c.json(mark) == [
            {"type": "UserStartedSpeaking"},
            {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 0},
            {"type": "UtteranceEnd", "channel": [0], "last_word_end": 1.5},
        ]
        assert up_types(c.up) == ["session.update"]
    async with env(extra_events=False) as e:
        c = await e.ready()
        mark = c.mark()
        for event in P97_SPEECH:
            c.up.send(event)
        await c.wait_type("UserStartedSpeaking", since=mark)
        await e.quiet(c)
        assert c.json(mark) == [{"type": "UserStartedSpeaking"}]


TRANSCRIPTION = [
    ev.input_transcription_delta("item_u1", "Hel"),
    ev.input_transcription_delta("item_u1", "lo "),
    ev.input_transcription_delta("item_u1", "world"),
    P98_TRANSCRIPTION_COMPLETED,
]


async def test_p98_input_transcription(env):
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        for event in TRANSCRIPTION:
            c.up.send(event)
        await c.wait_type("History", since=mark)
        await e.quiet(c)
        assert c.json(mark) == [
            p98_transcript("Hel", False),
            p98_transcript("Hello ", False),
            p98_transcript("Hello world", False),
            p98_transcript("Hello world", True),
            *P98_USER_TEXT,
        ]
    async with env(extra_events=False) as e:
        c = await e.ready()
        mark = c.mark()
        for event in TRANSCRIPTION:
            c.up.send(event)
        await c.wait_type("History", since=mark)
        await e.quiet(c)
        assert c.json(mark) == P98_USER_TEXT


async def test_p99_log_only_and_unknown_events(env):
    item = ev.message_item("item_a1")
    log_only = [
        ev.rate_limits_updated(),
        {"type": "conversation.created", "conversation": {"id": "conv_1", "object": "realtime"}},
        ev.cleared(),
        ev.output_item_done("resp_9", item),
        ev.content_part_added("resp_9", "item_a1"),
        {"type": "mcp_list_tools.completed", "item_id": "mcp_1"},
        {"type": "output_audio_buffer.started", "response_id": "resp_9"},
        ev.item_truncated("item_a1", 0, 100),
    ]
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        for event in log_only:
            c.up.send(event)
        c.up.send({"type": "response.brand_new_thing", "x": 1})
        await e.quiet(c)
        assert c.types(mark) == []
        violations = {k: v for k, v in c.stats.violations.items() if v}
        assert violations == {"unmapped_upstream_event": 1}
        warnings = [
            r
            for r in e.logs.records
            if (r.levelno == logging.WARNING and "response.brand_new_thing" in r.getMessage())
            or (
                r.levelno == logging.WARNING
                and "response.brand_new_thing" in str(getattr(r, "message_type", ""))
            )
        ]
        assert warnings, "no warning log names response.brand_new_thing"


async def test_p100_non_json_upstream_text(env):
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        c.up.send_raw_text("not json")
        c.up.send({"no_type": True}, stamp=False)
        await e.quiet(c)
        assert c.types(mark) == []
        assert c.stats.violations["invalid_upstream_json"] == 1
        assert c.stats.violations["malformed_upstream_event"] == 1
        assert not c.closed
        c.send({"type": "KeepAlive"})
        await asyncio.sleep(0.05)
        assert not c.closed


async def test_p101_audio_for_a_response_never_announced(env):
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        frames = [A(960, offset=960 * i) for i in range(3)]
        for pcm in frames:
            c.up.send(delta("resp_echo", "item_echo", pcm))
        await c.wait_binaries(3, since=mark)
        await e.quiet(c)
        assert c.types(mark) == ["AgentStartedSpeaking"] + ["<binary>"] * 3
        assert c.binaries(mark) == frames
        c.send({"type": "InjectAgentMessage", "message": "Please hold."})
        await c.up.wait_for_event("response.create")
        assert c.of("InjectionRefused", mark) == []
