"""§13.8 Context, greeting and History: P-85 … P-91, end to end over real sockets."""

from __future__ import annotations

import asyncio

from e2e_kit import (
    A,
    created,
    delta,
    done,
    fcall,
    transcript_done,
    up_of,
    up_times,
    up_types,
)
from spec_examples import (
    P85_SETTINGS,
    P86_ITEMS,
    P86_SETTINGS,
    P90_CLIENT_TYPES,
    P91_FUNCTION_CALL_HISTORY,
    scripted_create,
)


def user(item_id, text):
    return {
        "type": "conversation.item.create",
        "item": {
            "id": item_id,
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


def assistant(item_id, text):
    return {
        "type": "conversation.item.create",
        "item": {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text}],
        },
    }


def settings_with(agent):
    return {"type": "Settings", "agent": agent}


async def test_p85_context_items(env):
    async with env() as e:
        answered = e.answer_updates(delay_ms=50)
        c = await e.ready(P85_SETTINGS)
        u = c.up
        await u.wait_for_event("conversation.item.create", nth=2)
        await e.quiet(c, u)
        (_, answered_at) = answered[0]
        assert min(up_times(u, "conversation.item.create")) >= answered_at
        assert up_of(u, "conversation.item.create") == [
            user("fp_1", "Hello"),
            assistant("fp_2", "Hi there!"),
            user("fp_3", "x"),
        ]
        assert up_types(u) == ["session.update"] + ["conversation.item.create"] * 3
        # the three items were written upstream before SettingsApplied was written to the client
        writes = c.writes
        applied = writes.index(("client", "SettingsApplied"))
        items = [i for i, w in enumerate(writes) if w == ("upstream", "conversation.item.create")]
        assert len(items) == 3 and max(items) < applied
        assert c.types() == ["Welcome", "SettingsApplied"]


async def test_p86_context_with_function_calls(env):
    async with env() as e:
        c = await e.ready(P86_SETTINGS)
        u = c.up
        await u.wait_for_event("conversation.item.create", nth=2)
        assert up_of(u, "conversation.item.create") == [
            {"type": "conversation.item.create", "item": item} for item in P86_ITEMS
        ]


async def test_p87_text_greeting(env):
    greeting = "Hello! How can I help you today?"
    async with env() as e:
        c = await e.ready(settings_with({"greeting": greeting}))
        await e.quiet(c, c.up, window=1.5)
        assert c.json()[1:] == [
            {"type": "SettingsApplied"},
            {"type": "ConversationText", "role": "assistant", "content": greeting},
            {"type": "History", "role": "assistant", "content": greeting},
        ]
        assert up_types(c.up) == ["session.update"]


async def test_p88_blank_greeting_greeting_off(env):
    async with env() as e:
        c = await e.ready(settings_with({"greeting": "   "}))
        await e.quiet(c)
        assert c.types() == ["Welcome", "SettingsApplied"]
    async with env(greeting="off") as e:
        c = await e.ready(settings_with({"greeting": "Hi"}))
        await e.quiet(c, c.up)
        assert c.types() == ["Welcome", "SettingsApplied"]
        assert up_types(c.up) == ["session.update"]


async def test_p89_greeting_suppressed_by_context(env):
    agent = {
        "greeting": "Welcome back!",
        "context": {"messages": [{"type": "History", "role": "user", "content": "Hello"}]},
    }
    async with env() as e:
        c = await e.ready(settings_with(agent))
        await c.up.wait_for_event("conversation.item.create")
        await e.quiet(c, c.up)
        assert up_types(c.up) == ["session.update", "conversation.item.create"]
        assert c.types() == ["Welcome", "SettingsApplied"]


async def test_p90_spoken_greeting(env):
    pcm = A(960)
    async with env(greeting="spoken") as e:
        e.on_response_create(
            [
                created("resp_1"),
                delta("resp_1", "item_g1", pcm),
                transcript_done("resp_1", "item_g1", "Hi!"),
                done("resp_1"),
            ]
        )
        c = await e.ready(settings_with({"greeting": "Hi!"}))
        await c.wait_type("AgentAudioDone")
        await e.quiet(c, c.up)
        kinds = [t for t in c.types() if t != "History"]
        assert kinds == P90_CLIENT_TYPES
        assert c.of("ConversationText") == [
            {"type": "ConversationText", "role": "assistant", "content": "Hi!"}
        ]
        assert c.binaries() == [pcm]
        assert up_of(c.up, "response.create") == [scripted_create("Hi!")]
        assert "conversation.item.create" not in up_types(c.up)


async def run_p57_with_history(e, settings):
    e.on_response_create(
        [created("resp_1"), fcall("resp_1", "item_f1", "call_1", "get_time", "{}"), done("resp_1")],
        [created("resp_2"), transcript_done("resp_2", "item_a2", "It is noon."), done("resp_2")],
    )
    c = await e.ready(settings)
    mark = c.mark()
    c.send({"type": "InjectUserMessage", "content": "What time is it?"})
    await c.wait_type("AgentAudioDone", since=mark)
    await asyncio.sleep(0.3)
    c.send(
        {
            "type": "FunctionCallResponse",
            "id": "call_1",
            "name": "get_time",
            "content": '{"time":"12:00"}',
        }
    )
    await c.wait_type("AgentAudioDone", count=2, since=mark)
    await e.quiet(c)
    return c, c.json(mark)


async def test_p91_history_messages(env):
    think = {"prompt": "Be brief.", "functions": [{"name": "get_time"}]}
    async with env(confirming=True) as e:
        _, msgs = await run_p57_with_history(e, settings_with({"think": think}))
        types = [m["type"] for m in msgs]

        def after(index, expected):
            assert msgs[index + 1] == expected, (msgs[index], msgs[index + 1])

        echo = msgs.index(
            {"type": "ConversationText", "role": "user", "content": "What time is it?"}
        )
        after(echo, {"type": "History", "role": "user", "content": "What time is it?"})
        thinking = max(i for i, t in enumerate(types) if t == "AgentThinking")
        after(thinking, P91_FUNCTION_CALL_HISTORY)
        answer = msgs.index(
            {"type": "ConversationText", "role": "assistant", "content": "It is noon."}
        )
        after(answer, {"type": "History", "role": "assistant", "content": "It is noon."})
    async with env(confirming=True) as e:
        settings = {**settings_with({"think": think}), "flags": {"history": False}}
        _, msgs = await run_p57_with_history(e, settings)
        assert [m for m in msgs if m["type"] == "History"] == []
        assert {"type": "ConversationText", "role": "assistant", "content": "It is noon."} in msgs
