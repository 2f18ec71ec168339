"""§13.13 End to end: P-116 and P-117, plus P-120 (which runs on top of P-116)."""

from __future__ import annotations

from e2e_kit import (
    SPEC_QUIET_S,
    A,
    audio_done,
    created,
    delta,
    done,
    fcall,
    transcript_done,
    up_events,
    up_of,
)
from spec_examples import P116_ANSWER, P116_CLIENT_TYPES, P116_SETTINGS
from test_p_barge_in import barge_in_p102


async def run_p116(e):
    pcm = A(960)
    e.on_response_create(
        [
            created("resp_1"),
            fcall("resp_1", "item_f1", "call_1", "get_current_time", "{}"),
            done("resp_1"),
        ],
        [
            created("resp_2"),
            delta("resp_2", "item_a2", pcm),
            audio_done("resp_2", "item_a2"),
            transcript_done("resp_2", "item_a2", "It is 12:00."),
            done("resp_2"),
        ],
    )
    c = await e.ready(P116_SETTINGS)
    mark = c.mark()
    c.send({"type": "InjectUserMessage", "content": "What time is it?"})
    request = await c.wait_type("FunctionCallRequest", since=mark)
    assert request["functions"][0]["id"] == "call_1"
    c.send({"type": "FunctionCallResponse", "id": "call_1", "content": P116_ANSWER})
    await c.wait_type("ConversationText", count=2, since=mark)
    await c.wait_type("AgentAudioDone", count=2, since=mark)
    await e.quiet(c, c.up)
    return c, mark, pcm


async def test_p116_function_call_round_trip(env):
    async with env(confirming=True) as e:
        c, mark, pcm = await run_p116(e)
        u = c.up
        sent = [ev for ev in up_events(u) if ev["type"] != "session.update"]
        assert sent == [
            {
                "type": "conversation.item.create",
                "item": {
                    "id": "fp_1",
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "What time is it?"}],
                },
            },
            {"type": "response.create"},
            {
                "type": "conversation.item.create",
                "item": {
                    "id": "fp_2",
                    "type": "function_call_output",
                    "call_id": "call_1",
                    "output": P116_ANSWER,
                },
            },
            {"type": "response.create"},
        ]
        assert up_events(u)[0]["type"] == "session.update"
        order = [t for t in c.types(mark) if t != "History"]
        assert order == P116_CLIENT_TYPES
        texts = c.of("ConversationText", mark)
        assert texts[0] == {
            "type": "ConversationText",
            "role": "user",
            "content": "What time is it?",
        }
        assert texts[1] == {
            "type": "ConversationText",
            "role": "assistant",
            "content": "It is 12:00.",
        }
        assert c.binaries(mark) == [pcm]


async def test_p117_counted_events(env):
    async with env(confirming=True) as e:
        c, _, _ = await run_p116(e)
        stats = c.stats
        assert {k: v for k, v in stats.turns_started.items() if v} == {"reply": 1, "tool": 1}
        assert {k: v for k, v in stats.turns_completed.items() if v} == {"completed": 2}
        assert stats.barge_ins == 0
        assert sum(stats.violations.values()) == 0
        assert sum(stats.upstream_errors.values()) == 0
    async with env() as e:
        c, mark, _, _ = await barge_in_p102(e)
        c.up.send(done("resp_1", "cancelled"))
        await c.wait_type("AgentAudioDone", since=mark)
        assert c.stats.barge_ins == 1
        assert {k: v for k, v in c.stats.turns_completed.items() if v} == {"cancelled": 1}


async def test_p120_repeated_function_result_adds_no_turn(env):
    async with env(confirming=True) as e:
        c, _, _ = await run_p116(e)
        u = c.up
        mark = c.mark()
        c.send({"type": "FunctionCallResponse", "id": "call_1", "content": P116_ANSWER})
        await u.wait_for_event("conversation.item.create", nth=2)
        await c.wait_type("History", since=mark)
        await e.quiet(c, u, window=SPEC_QUIET_S)
        third = up_of(u, "conversation.item.create")[2]
        assert third == {
            "type": "conversation.item.create",
            "item": {
                "id": "fp_3",
                "type": "function_call_output",
                "call_id": "call_1",
                "output": P116_ANSWER,
            },
        }
        assert len(up_of(u, "response.create")) == 2
        assert c.json(mark) == [
            {"type": "AgentThinking", "content": ""},
            {
                "type": "History",
                "function_calls": [
                    {
                        "id": "call_1",
                        "name": "get_current_time",
                        "client_side": True,
                        "arguments": "{}",
                        "response": P116_ANSWER,
                    }
                ],
            },
        ]
