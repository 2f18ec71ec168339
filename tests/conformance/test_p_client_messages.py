"""§13.7 Client messages: P-71 … P-84, P-124 and P-125, end to end over real sockets."""

from __future__ import annotations

import asyncio

from e2e_kit import (
    S0,
    created,
    done,
    now,
    speech_started,
    speech_stopped,
    transcript_done,
    up_of,
    up_types,
)
from spec_examples import (
    P74_CASES,
    P78_SESSION_UPDATE,
    P78_UPDATE_SPEAK,
    P79_WARNING,
    P125_TIMEOUT_TRIGGERED,
    SUPPORTED_CLIENT_TYPES,
    prompt_update,
    scripted_create,
)

PLEASE_HOLD_ITEM = {
    "type": "conversation.item.create",
    "item": {
        "id": "fp_1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Please hold."}],
    },
}
PLEASE_HOLD_CREATE = scripted_create("Please hold.")


async def test_p71_keepalive(env):
    async with env() as e:
        c = await e.ready()
        mark, before = c.mark(), c.up.received_total
        c.send({"type": "KeepAlive"})
        await e.quiet(c, c.up)
        assert c.types(mark) == [] and c.up.received_total == before


async def test_p72_unknown_types(env):
    async with env() as e:
        c = await e.ready()
        mark, before = c.mark(), c.up.received_total
        c.send({"type": "CustomProbe", "foo": 1})
        c.send({"foo": 1})
        c.send({"type": "UpdateThink", "think": {}})
        await c.wait_type("Error", count=3, since=mark)
        await e.quiet(c, c.up)
        errors = c.json(mark)
        assert [m["type"] for m in errors] == ["Error"] * 3
        for err, name in zip(errors, ("CustomProbe", "(missing)", "UpdateThink"), strict=True):
            assert err["code"] == "disallowed_client_message_type"
            assert name in err["description"]
            for supported in SUPPORTED_CLIENT_TYPES:
                assert supported in err["description"]
        assert c.up.received_total == before
        assert not c.closed


async def test_p73_malformed_json(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        mark = c.mark()
        c.send_text('{"type":"Settings"')
        c.send_text("[1,2]")
        c.send_text(b"\xff\xfe")
        await c.wait_type("Error", count=3, since=mark)
        await e.quiet(u)
        assert up_types(u) == ["session.update"]
        c.send({"type": "InjectUserMessage", "content": "Hi"})
        await u.wait_for_event("conversation.item.create")
        await c.wait_type("History", since=mark)
        assert [m["code"] for m in c.of("Error", mark)] == ["invalid_client_json"] * 3
        assert c.types(mark) == ["Error"] * 3 + ["ConversationText", "History"]
        assert up_of(u, "conversation.item.create")[0]["item"]["id"] == "fp_1"
        assert not c.closed


async def test_p74_invalid_fields(env):
    cases = P74_CASES
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        for message, _ in cases:
            c.send(message)
        await c.wait_type("Error", count=len(cases), since=mark)
        await e.quiet(c, c.up)
        errors = c.json(mark)
        assert len(errors) == len(cases)
        for err, (message, field) in zip(errors, cases, strict=True):
            assert err["type"] == "Error" and err["code"] == "invalid_client_json", message
            assert field in err["description"], (message, err)
        assert up_types(c.up) == ["session.update"]


async def test_p75_inject_before_ready(env):
    async with env(mock={"session_updated_delay_ms": 100}) as e:
        c = await e.connect()
        u = await e.upstream_of(c)
        t0 = now()
        c.send({"type": "InjectUserMessage", "content": "Before settings"})
        c.send(S0)
        await u.wait_for_event("session.update")
        await asyncio.sleep(max(0.0, t0 + 0.08 - now()))
        assert up_types(u) == ["session.update"]
        assert c.types() == ["Welcome"]
        await u.wait_for_event("conversation.item.create")
        await c.wait_type("History")
        assert c.types() == ["Welcome", "SettingsApplied", "ConversationText", "History"]
        assert c.json()[2] == {
            "type": "ConversationText",
            "role": "user",
            "content": "Before settings",
        }
        assert up_types(u) == ["session.update", "conversation.item.create"]
        assert up_of(u, "conversation.item.create")[0]["item"]["id"] == "fp_1"


async def test_p76_update_prompt(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        mark = c.mark()
        c.send({"type": "UpdatePrompt", "prompt": "Answer in French."})
        await c.wait_type("PromptUpdated", since=mark)
        assert up_of(u, "session.update")[1] == prompt_update("Be brief.\nAnswer in French.")
        assert c.types(mark) == ["PromptUpdated"]
        assert c.json(mark) == [{"type": "PromptUpdated"}]
        c.send({"type": "UpdatePrompt", "prompt": "Use short words."})
        await c.wait_type("PromptUpdated", count=2, since=mark)
        assert up_of(u, "session.update")[2] == prompt_update(
            "Be brief.\nAnswer in French.\nUse short words."
        )
        await e.quiet(c)
        assert c.types(mark) == ["PromptUpdated", "PromptUpdated"]


async def test_p77_update_prompt_rejected(env):
    async with env() as e:
        e.answer_updates(reject={1: ("invalid_value", "Too long")})
        c = await e.ready()
        u = c.up
        mark = c.mark()
        c.send({"type": "UpdatePrompt", "prompt": "X"})
        warning = await c.wait_type("Warning", since=mark)
        assert warning == {"type": "Warning", "description": "Too long", "code": "invalid_value"}
        c.send({"type": "UpdatePrompt", "prompt": "Y"})
        await c.wait_type("PromptUpdated", since=mark)
        assert up_of(u, "session.update")[2] == prompt_update("Be brief.\nY")
        await e.quiet(c, u)
        assert c.types(mark) == ["Warning", "PromptUpdated"]
        assert len(up_of(u, "session.update")) == 3


async def test_p78_update_speak(env):
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        c.send(P78_UPDATE_SPEAK)
        await c.wait_type("SpeakUpdated", since=mark)
        assert up_of(c.up, "session.update")[1] == P78_SESSION_UPDATE
        assert c.json(mark) == [{"type": "SpeakUpdated"}]


async def test_p79_update_speak_rejected(env):
    async with env() as e:
        e.answer_updates(reject={1: ("cannot_update_voice", "Voice cannot be changed after audio")})
        c = await e.ready()
        mark = c.mark()
        c.send(P78_UPDATE_SPEAK)
        warning = await c.wait_type("Warning", since=mark)
        assert warning == P79_WARNING
        await e.quiet(c)
        assert c.types(mark) == ["Warning"]


async def test_p80_update_speak_without_voice(env):
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        c.send(
            {
                "type": "UpdateSpeak",
                "speak": {"provider": {"type": "deepgram", "model": "aura-2-thalia-en"}},
            }
        )
        warning = await c.wait_type("Warning", since=mark)
        assert warning["code"] == "settings_field_ignored"
        assert "speak.provider.voice" in warning["description"]
        await e.quiet(c, c.up)
        assert c.types(mark) == ["Warning"]
        assert up_types(c.up) == ["session.update"]


def scripted_reply(rid):
    return [created(rid), transcript_done(rid, "item_s1", "Please hold."), done(rid)]


async def test_p81_inject_agent_message(env):
    async with env(confirming=True) as e:
        e.on_response_create(scripted_reply("resp_1"))
        c = await e.ready()
        u = c.up
        mark = c.mark()
        c.send({"type": "InjectAgentMessage", "message": "Please hold."})
        await u.wait_for_event("response.create")
        await c.wait_type("AgentAudioDone", since=mark)
        await e.quiet(c)
        assert up_of(u, "conversation.item.create") == [PLEASE_HOLD_ITEM]
        assert up_of(u, "response.create") == [PLEASE_HOLD_CREATE]
        assert up_types(u)[1:] == ["conversation.item.create", "response.create"]
        texts = c.of("ConversationText", mark)
        assert texts == [
            {"type": "ConversationText", "role": "assistant", "content": "Please hold."}
        ]


async def test_p82_injection_refused_while_busy(env):
    async with env() as e:
        c = await e.ready()
        c.up.send(created("resp_1"))
        mark = c.mark()
        c.send({"type": "InjectAgentMessage", "message": "Hi"})
        refused = await c.wait_type("InjectionRefused", since=mark)
        assert set(refused) == {"type", "message"}
        assert isinstance(refused["message"], str) and refused["message"].strip()
        await e.quiet(c, c.up)
        assert up_types(c.up) == ["session.update"]
        assert c.types(mark) == ["InjectionRefused"]


async def test_p83_injection_refused_while_user_speaks(env):
    async with env(confirming=True) as e:
        c = await e.ready()
        u = c.up
        mark = c.mark()
        u.send(speech_started())
        await c.wait_type("UserStartedSpeaking", since=mark)
        c.send({"type": "InjectAgentMessage", "message": "Please hold."})
        await c.wait_type("InjectionRefused", since=mark)
        await e.quiet(u)
        assert up_types(u) == ["session.update"]
        u.send(speech_stopped())
        await c.wait_type("UtteranceEnd", since=mark)
        c.send({"type": "InjectAgentMessage", "message": "Please hold."})
        await u.wait_for_event("response.create")
        assert up_of(u, "conversation.item.create") == [PLEASE_HOLD_ITEM]
        assert up_of(u, "response.create") == [PLEASE_HOLD_CREATE]
        assert len(c.of("InjectionRefused", mark)) == 1


async def test_p84_function_call_response_content_forms(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        c.send({"type": "FunctionCallResponse", "id": "c1", "content": {"time": "14:32"}})
        c.send({"type": "FunctionCallResponse", "id": "c2"})
        c.send({"type": "FunctionCallResponse", "id": "c3", "content": None})
        await u.wait_for_event("conversation.item.create", nth=2)
        items = [ev["item"] for ev in up_of(u, "conversation.item.create")]
        assert [(i["call_id"], i["output"]) for i in items] == [
            ("c1", '{"time":"14:32"}'),
            ("c2", ""),
            ("c3", ""),
        ]
        assert all(i["type"] == "function_call_output" for i in items)


async def test_p124_rejected_prompt_leaves_the_instructions(env):
    async with env() as e:
        e.answer_updates(reject={1: ("invalid_value", "Too long")})
        c = await e.ready()
        u = c.up
        mark = c.mark()
        c.send({"type": "UpdatePrompt", "prompt": "X"})
        c.send({"type": "UpdatePrompt", "prompt": "Y"})
        await c.wait_type("PromptUpdated", since=mark)
        await c.wait_type("Warning", since=mark)
        await e.quiet(c, u)
        assert up_of(u, "session.update")[1:] == [
            prompt_update("Be brief.\nX"),
            prompt_update("Be brief.\nX\nY"),
        ]
        assert c.of("Warning", mark) == [
            {"type": "Warning", "description": "Too long", "code": "invalid_value"}
        ]
        assert len(c.of("PromptUpdated", mark)) == 1
        c.send({"type": "UpdatePrompt", "prompt": "Z"})
        await u.wait_for_event("session.update", nth=3)
        assert up_of(u, "session.update")[3] == prompt_update("Be brief.\nY\nZ")


async def test_p125_lost_speech_stopped_does_not_block_injections(env):
    clear = {
        "a": [{"type": "input_audio_buffer.committed", "item_id": "item_u1"}],
        "b": [P125_TIMEOUT_TRIGGERED],
        "c": [created("resp_1"), done("resp_1")],
    }
    async with env(confirming=True) as e:
        for case, events in clear.items():
            c = await e.ready()
            u = c.up
            mark = c.mark()
            u.send(speech_started())
            for event in events:
                u.send(event)
            await c.wait_type("UserStartedSpeaking", since=mark)
            if case == "c":
                await c.wait_type("AgentAudioDone", since=mark)
            else:
                await asyncio.sleep(0.05)
            c.send({"type": "InjectAgentMessage", "message": "Please hold."})
            await u.wait_for_event("response.create")
            assert up_of(u, "conversation.item.create") == [PLEASE_HOLD_ITEM], case
            assert up_of(u, "response.create") == [PLEASE_HOLD_CREATE], case
            assert c.of("InjectionRefused", mark) == [], case
            c.close()
