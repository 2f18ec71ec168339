"""§13.6 Response gating: P-51 … P-70, P-118 … P-121 and P-123, end to end."""

from __future__ import annotations

import asyncio

from e2e_kit import (
    SPEC_QUIET_S,
    A,
    audio_done,
    created,
    delta,
    done,
    fcall,
    item_added,
    now,
    reject_request,
    send_at,
    text_done,
    up_of,
    up_times,
    up_types,
    upstream_error,
)

from fastproxy.testing import ConfirmItem, RejectItem, confirm_only

CREATE = {"type": "response.create"}
RIGHT_AFTER = 0.25  # seconds: "right after" an event, on a noisy machine
CONFLICT = "conversation_already_has_active_response"


def user_item(item_id, text):
    return {
        "type": "conversation.item.create",
        "item": {
            "id": item_id,
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


def output_item(item_id, call_id, output):
    return {
        "type": "conversation.item.create",
        "item": {
            "id": item_id,
            "type": "function_call_output",
            "call_id": call_id,
            "output": output,
        },
    }


def prompt_update(instructions):
    return {"type": "session.update", "session": {"type": "realtime", "instructions": instructions}}


def inject(text):
    return {"type": "InjectUserMessage", "content": text}


def with_functions(*names):
    return {
        "type": "Settings",
        "agent": {"think": {"prompt": "Be brief.", "functions": [{"name": n} for n in names]}},
    }


def creates(u):
    return up_of(u, "response.create")


async def assert_right_after(u, type_, sent_at, nth=0):
    await u.wait_for_event(type_, nth=nth)
    t = up_times(u, type_)[nth]
    assert sent_at <= t <= sent_at + RIGHT_AFTER, f"{type_} {t - sent_at:.3f}s after"


async def test_p51_inject_translation_and_echo(env):
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        c.send(inject("What is 2 plus 2?"))
        await c.up.wait_for_event("conversation.item.create")
        await c.wait_type("History", since=mark)
        assert up_of(c.up, "conversation.item.create") == [user_item("fp_1", "What is 2 plus 2?")]
        assert c.json(mark) == [
            {"type": "ConversationText", "role": "user", "content": "What is 2 plus 2?"},
            {"type": "History", "role": "user", "content": "What is 2 plus 2?"},
        ]
        await e.quiet(c.up, window=SPEC_QUIET_S)
        assert creates(c.up) == []


async def test_p52_response_create_after_confirmation(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        c.send(inject("What is 2 plus 2?"))
        await u.wait_for_event("conversation.item.create")
        await c.wait_type("History")
        mark = c.mark()
        await asyncio.sleep(0.1)
        assert creates(u) == []
        confirmation = {
            "type": "conversation.item.added",
            "previous_item_id": None,
            "item": user_item("fp_1", "What is 2 plus 2?")["item"],
        }
        t = send_at(u, confirmation)
        await assert_right_after(u, "response.create", t)
        await e.quiet(c, u)
        assert creates(u) == [CREATE]
        assert c.types(mark) == []


async def test_p53_each_id_counts_once(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        c.send(inject("What is 2 plus 2?"))
        item = (await u.wait_for_event("conversation.item.create"))["item"]
        u.send({"type": "conversation.item.created", "previous_item_id": None, "item": item})
        u.send({"type": "conversation.item.done", "previous_item_id": None, "item": item})
        await u.wait_for_event("response.create")
        u.send(created("resp_1"))
        u.send(text_done("resp_1", "item_a1", "Four."))
        u.send(done("resp_1"))
        await c.wait_type("AgentAudioDone")
        await e.quiet(u)
        assert creates(u) == [CREATE]
        assert {"type": "ConversationText", "role": "assistant", "content": "Four."} in c.json()


async def test_p54_other_items_do_not_confirm(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        c.send(inject("Hi"))
        await u.wait_for_event("conversation.item.create")
        u.send(item_added("item_other", "message", role="assistant"))
        u.send({"type": "conversation.item.created"})
        await e.quiet(u)
        assert creates(u) == []
        t = send_at(u, item_added("fp_1", "message", role="user"))
        await assert_right_after(u, "response.create", t)
        await e.quiet(u)
        assert creates(u) == [CREATE]


async def test_p55_inject_during_response(env):
    async with env(confirming=True) as e:
        c = await e.ready()
        u = c.up
        u.send(created("resp_1"))
        c.send(inject("Also, what time is it?"))
        await u.wait_for_event("conversation.item.create")
        await e.quiet(u)
        assert up_types(u) == ["session.update", "conversation.item.create"]
        t = send_at(u, done("resp_1"))
        await assert_right_after(u, "response.create", t)
        await e.quiet(u)
        assert creates(u) == [CREATE]


async def test_p56_coalescing(env):
    async with env(confirming=True) as e:
        c = await e.ready()
        u = c.up
        u.send(created("resp_1"))
        c.send(inject("One"))
        c.send(inject("Two"))
        await u.wait_for_event("conversation.item.create", nth=1)
        await c.wait_type("History", count=2)
        await asyncio.sleep(0.1)
        t = send_at(u, done("resp_1"))
        await assert_right_after(u, "response.create", t)
        await e.quiet(u)
        assert creates(u) == [CREATE]
        items = [ev["item"]["id"] for ev in up_of(u, "conversation.item.create")]
        assert items == ["fp_1", "fp_2"]


async def test_p57_function_result_after_response_done(env):
    async with env(confirming=True) as e:
        e.on_response_create(
            [
                created("resp_1"),
                fcall("resp_1", "item_f1", "call_1", "get_time", "{}"),
                done("resp_1"),
            ]
        )
        c = await e.ready(with_functions("get_time"))
        u = c.up
        c.send(inject("What time is it?"))
        await c.wait_type("AgentAudioDone")
        await asyncio.sleep(0.3)
        mark = c.mark()
        c.send(
            {
                "type": "FunctionCallResponse",
                "id": "call_1",
                "name": "get_time",
                "content": '{"time":"12:00"}',
            }
        )
        await u.wait_for_event("response.create", nth=1)
        items = up_of(u, "conversation.item.create")
        assert items[1] == output_item("fp_2", "call_1", '{"time":"12:00"}')
        # the second response.create follows the confirmation of fp_2
        confirmed_at = [r.t for r in u.received if r.type == "conversation.item.create"][1]
        assert up_times(u, "response.create")[1] >= confirmed_at
        await e.quiet(u)
        assert creates(u) == [CREATE, CREATE]
        assert c.types(mark)[0] == "AgentThinking"
        assert c.json(mark)[0] == {"type": "AgentThinking", "content": ""}


async def test_p58_function_result_while_response_runs(env):
    async with env(confirming=True) as e:
        e.on_response_create(
            [created("resp_1"), fcall("resp_1", "item_f1", "call_1", "get_time", "{}")]
        )
        c = await e.ready(with_functions("get_time"))
        u = c.up
        c.send(inject("What time is it?"))
        await c.wait_type("FunctionCallRequest")
        c.send({"type": "FunctionCallResponse", "id": "call_1", "content": '{"time":"12:00"}'})
        await u.wait_for_event("conversation.item.create", nth=1)
        await e.quiet(u)
        assert len(creates(u)) == 1
        t = send_at(u, done("resp_1"))
        await assert_right_after(u, "response.create", t, nth=1)
        await e.quiet(u)
        assert len(creates(u)) == 2


async def test_p59_only_response_done_ends_a_response(env):
    async with env(confirming=True) as e:
        e.on_response_create(
            [created("resp_1"), fcall("resp_1", "item_f1", "call_1", "get_time", "{}")]
        )
        c = await e.ready(with_functions("get_time"))
        u = c.up
        c.send(inject("What time is it?"))
        await c.wait_type("FunctionCallRequest")
        c.send({"type": "FunctionCallResponse", "id": "call_1", "content": '{"time":"12:00"}'})
        await u.wait_for_event("conversation.item.create", nth=1)
        u.send(audio_done("resp_1", "item_a1"))
        await asyncio.sleep(0.3)
        u.send(text_done("resp_1", "item_a1", "One moment."))
        await asyncio.sleep(0.3)
        assert len(creates(u)) == 1
        t = send_at(u, done("resp_1"))
        await assert_right_after(u, "response.create", t, nth=1)
        await e.quiet(u)
        assert len(creates(u)) == 2


async def test_p60_parallel_function_calls(env):
    async with env(confirming=True) as e:
        c = await e.ready(with_functions("get_time", "get_date"))
        u = c.up
        u.send(created("resp_1"))
        u.send(fcall("resp_1", "item_f1", "call_1", "get_time"))
        u.send(fcall("resp_1", "item_f2", "call_2", "get_date"))
        u.send(done("resp_1"))
        await c.wait_type("AgentAudioDone")
        assert len(c.of("FunctionCallRequest")) == 2
        t0 = now()
        c.send({"type": "FunctionCallResponse", "id": "call_1", "content": "12:00"})
        await u.wait_for_event("conversation.item.create")
        await asyncio.sleep(max(0.0, t0 + 0.2 - now()))
        assert creates(u) == []
        c.send({"type": "FunctionCallResponse", "id": "call_2", "content": "Monday"})
        await u.wait_for_event("response.create")
        second_output_at = [r.t for r in u.received if r.type == "conversation.item.create"][1]
        assert up_times(u, "response.create")[0] >= second_output_at
        await e.quiet(u)
        assert creates(u) == [CREATE]


async def test_p61_late_confirmation_of_the_user_item(env):
    async with env(mock={"confirm_items": confirm_only("function_call_output")}) as e:
        c = await e.ready(with_functions("get_time"))
        u = c.up
        c.send(inject("What time is it?"))
        item = (await u.wait_for_event("conversation.item.create"))["item"]
        u.send(created("resp_1"))
        u.send(fcall("resp_1", "item_f1", "call_1", "get_time"))
        u.send(done("resp_1"))
        await c.wait_type("AgentAudioDone")
        c.send({"type": "FunctionCallResponse", "id": "call_1", "content": "12:00"})
        await u.wait_for_event("conversation.item.create", nth=1)
        await e.quiet(u)
        assert creates(u) == []
        t = send_at(u, {"type": "conversation.item.added", "item": item})
        await assert_right_after(u, "response.create", t)
        await e.quiet(u)
        assert creates(u) == [CREATE]


async def test_p62_upstream_created_responses_occupy_the_slot(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        u.send(created("resp_1"))
        c.send({"type": "UpdatePrompt", "prompt": "Answer in French."})
        await e.quiet(u)
        assert up_types(u) == ["session.update"]
        t = send_at(u, done("resp_1"))
        await assert_right_after(u, "session.update", t, nth=1)
        assert up_of(u, "session.update")[1] == prompt_update("Be brief.\nAnswer in French.")


async def test_p63_fifo_order(env):
    async with env(confirming=True) as e:
        c = await e.ready()
        u = c.up
        u.send(created("resp_1"))
        c.send({"type": "UpdatePrompt", "prompt": "Answer in French."})
        c.send(inject("Hello"))
        await u.wait_for_event("conversation.item.create")
        await e.quiet(u, window=0.3)
        assert up_types(u) == ["session.update", "conversation.item.create"]
        u.send(done("resp_1"))
        await u.wait_for_event("response.create")
        await e.quiet(u, window=0.3)
        assert up_types(u) == [
            "session.update",
            "conversation.item.create",
            "session.update",
            "response.create",
        ]


async def test_p64_active_response_conflicts_are_swallowed(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        u.send(created("resp_1"))
        mark = c.mark()
        u.send(
            upstream_error(
                CONFLICT,
                "Conversation already has an active response",
                None,
                "invalid_request_error",
            )
        )
        await e.quiet(c)
        assert c.types(mark) == []
        assert c.stats.violations["active_response_conflict"] == 1
        assert c.stats.upstream_errors[CONFLICT] == 1
        # the slot is still taken: an agent injection is refused (T6)
        c.send({"type": "InjectAgentMessage", "message": "Hi"})
        await c.wait_type("InjectionRefused")


async def test_p65_errors_do_not_end_a_response(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        u.send(created("resp_1"))
        u.send(upstream_error("server_error", "Oops", None, "server_error"))
        c.send({"type": "UpdatePrompt", "prompt": "Answer in French."})
        err = await c.wait_type("Error")
        assert err == {"type": "Error", "description": "Oops", "code": "server_error"}
        await e.quiet(u)
        assert up_types(u) == ["session.update"]
        t = send_at(u, done("resp_1"))
        await assert_right_after(u, "session.update", t, nth=1)


async def test_p66_rejected_update_is_retried(env):
    async with env() as e:
        e.answer_updates(ignore={1})
        c = await e.ready()
        u = c.up
        mark = c.mark()
        c.send({"type": "UpdatePrompt", "prompt": "X"})
        update = await u.wait_for_event("session.update", nth=1)
        u.send(created("resp_1"))
        u.send(upstream_error(CONFLICT, "active", update["event_id"], "invalid_request_error"))
        await e.quiet(c, u)
        assert c.types(mark) == []
        t = send_at(u, done("resp_1"))
        await assert_right_after(u, "session.update", t, nth=2)
        retry = u.events_of("session.update")[2]
        assert retry["event_id"] != update["event_id"]
        assert up_of(u, "session.update")[2] == prompt_update("Be brief.\nX")
        await c.wait_type("PromptUpdated", since=mark)
        await e.quiet(c)
        assert c.types(mark) == ["AgentAudioDone", "PromptUpdated"]


async def test_p67_rejected_item(env):
    rejected = []

    def policy(conn, event):
        if not rejected:
            rejected.append(event)
            return RejectItem("invalid_value", "Bad item")
        return ConfirmItem()

    async with env(mock={"confirm_items": policy}) as e:
        c = await e.ready()
        u = c.up
        c.send(inject("First"))
        err = await c.wait_type("Error")
        assert err == {"type": "Error", "description": "Bad item", "code": "invalid_value"}
        await e.quiet(u)
        assert creates(u) == []
        c.send(inject("Second"))
        await u.wait_for_event("response.create")
        await e.quiet(u)
        assert creates(u) == [CREATE]
        assert [ev["item"]["id"] for ev in up_of(u, "conversation.item.create")] == ["fp_1", "fp_2"]


async def test_p68_safety_timeout_no_confirmation(env):
    async with env(sequencer_timeout_ms=500) as e:
        c = await e.ready()
        u = c.up
        mark = c.mark()
        t0 = now()
        c.send(inject("Hi"))
        warning = await c.wait_msg(lambda m: m.type == "Warning", since=mark)
        await u.wait_for_event("response.create")
        assert warning.obj["code"] == "sequencer_timeout"
        assert "fp_1" in warning.obj["description"]
        assert 0.48 <= warning.t - t0 <= 0.5 + 0.35
        assert 0.48 <= up_times(u, "response.create")[0] - t0 <= 0.5 + 0.35
        await asyncio.sleep(max(0.0, t0 + 0.9 - now()))
        assert c.stats.violations["sequencer_timeout"] == 1
        # the response.create is never answered: T19 follows about 500 ms later
        second = await c.wait_type("Warning", count=2, since=mark, timeout=3)
        assert second["code"] == "sequencer_timeout"
        assert c.stats.violations["sequencer_timeout"] == 2
        assert creates(u) == [CREATE]


async def test_p69_safety_timeout_no_response_done(env):
    async with env(sequencer_timeout_ms=500, confirming=True) as e:
        c = await e.ready()
        u = c.up
        mark = c.mark()
        t0 = now()
        c.send(inject("Hi"))
        await u.wait_for_event("response.create")
        await asyncio.sleep(max(0.0, t0 + 0.1 - now()))
        c.send({"type": "UpdatePrompt", "prompt": "Answer in French."})
        warning = await c.wait_msg(lambda m: m.type == "Warning", since=mark)
        assert warning.obj["code"] == "sequencer_timeout"
        assert 0.48 <= warning.t - t0 <= 0.5 + 0.35
        await u.wait_for_event("session.update", nth=1)
        assert 0.48 <= up_times(u, "session.update")[1] - t0 <= 0.5 + 0.35


async def test_p70_streaming_keeps_the_timer_alive(env):
    async with env(sequencer_timeout_ms=500) as e:
        c = await e.ready()
        u = c.up
        mark = c.mark()
        t0 = now()
        u.send(created("resp_1"))

        async def stream():
            for i in range(1, 8):  # a delta every 200 ms for 1.5 s
                await asyncio.sleep(max(0.0, t0 + 0.2 * i - now()))
                u.send(delta("resp_1", "item_a1", A(960, offset=960 * i)))
            await asyncio.sleep(max(0.0, t0 + 1.5 - now()))
            return send_at(u, done("resp_1"))

        task = e.spawn(stream())
        await asyncio.sleep(0.1)
        c.send({"type": "UpdatePrompt", "prompt": "Answer in French."})
        done_at = await task
        await assert_right_after(u, "session.update", done_at, nth=1)
        await c.wait_type("PromptUpdated", since=mark)
        await asyncio.sleep(0.2)
        assert c.of("Warning", mark) == []
        assert c.stats.violations["sequencer_timeout"] == 0


async def test_p118_several_rejected_updates_keep_their_order(env):
    async with env() as e:
        e.answer_updates(ignore={1, 2})
        c = await e.ready()
        u = c.up
        mark = c.mark()
        c.send({"type": "UpdatePrompt", "prompt": "X"})
        c.send({"type": "UpdatePrompt", "prompt": "Y"})
        await u.wait_for_event("session.update", nth=2)
        e1, e2 = u.events_of("session.update")[1:3]
        assert up_of(u, "session.update")[1:3] == [
            prompt_update("Be brief.\nX"),
            prompt_update("Be brief.\nX\nY"),
        ]
        u.send(created("resp_1"))
        u.send(upstream_error(CONFLICT, "active", e1["event_id"], "invalid_request_error"))
        u.send(upstream_error(CONFLICT, "active", e2["event_id"], "invalid_request_error"))
        await e.quiet(c, u)
        assert c.types(mark) == []
        u.send(done("resp_1"))
        await c.wait_type("PromptUpdated", count=2, since=mark)
        await e.quiet(c, u)
        updates = u.events_of("session.update")
        assert len(updates) == 5
        ids = {ev["event_id"] for ev in updates}
        assert len(ids) == 5
        assert up_of(u, "session.update")[3:] == [prompt_update("Be brief.\nX\nY")] * 2
        assert c.types(mark) == ["AgentAudioDone", "PromptUpdated", "PromptUpdated"]


async def test_p119_blocked_head_gets_a_fresh_timer(env):
    policy = confirm_only("function_call_output", delay_ms=1000)
    async with env(sequencer_timeout_ms=1000, mock={"confirm_items": policy}) as e:
        c = await e.ready(with_functions("get_time"))
        u = c.up
        mark = c.mark()
        t0 = send_at(u, created("resp_1"))
        await asyncio.sleep(max(0.0, t0 + 0.2 - now()))
        u.send(fcall("resp_1", "item_f1", "call_1", "get_time"))
        await c.wait_type("FunctionCallRequest", since=mark)
        await asyncio.sleep(max(0.0, t0 + 0.25 - now()))
        c.send({"type": "FunctionCallResponse", "id": "call_1", "content": "12:00"})
        await asyncio.sleep(max(0.0, t0 + 0.6 - now()))
        u.send(done("resp_1"))
        await u.wait_for_event("response.create", timeout=4)
        (create_at,) = up_times(u, "response.create")
        assert 1.2 <= create_at - t0 <= 1.25 + 0.35
        confirmed = [ev for ev in u.sent if ev.get("type") == "conversation.item.added"]
        assert confirmed and confirmed[0]["item"]["id"] == "fp_1"
        await e.quiet(c, u)
        assert c.of("Warning", mark) == []
        assert creates(u) == [CREATE]


async def test_p121_rejected_response_create_frees_the_slot(env):
    async with env(sequencer_timeout_ms=1000, confirming=True) as e:
        e.on_response_create([reject_request("invalid_value", "Bad response")])
        c = await e.ready()
        u = c.up
        mark = c.mark()
        c.send(inject("Hello"))
        err = await c.wait_type("Error", since=mark)
        assert err == {"type": "Error", "description": "Bad response", "code": "invalid_value"}
        t = now()
        c.send({"type": "UpdatePrompt", "prompt": "Answer in French."})
        await assert_right_after(u, "session.update", t, nth=1)
        assert up_of(u, "session.update")[1] == prompt_update("Be brief.\nAnswer in French.")
        assert [ev for ev in u.sent if ev.get("type") == "response.done"] == []
        await asyncio.sleep(1.5)
        assert c.of("Warning", mark) == []
        assert c.stats.turns_started == {"reply": 1}
        assert c.stats.turns_completed == {"failed": 1}


async def test_p123_overlapping_responses_hold_the_slot(env):
    async with env(confirming=True) as e:
        e.on_response_create([created("resp_1"), created("resp_2")])
        c = await e.ready()
        u = c.up
        mark = c.mark()
        c.send({"type": "InjectAgentMessage", "message": "Please hold."})
        await u.wait_for_event("response.create")
        await asyncio.sleep(0.1)
        c.send({"type": "UpdatePrompt", "prompt": "Answer in French."})
        await asyncio.sleep(0.1)
        done1 = send_at(u, done("resp_1"))
        await c.wait_type("AgentAudioDone", since=mark)
        await asyncio.sleep(max(0.0, done1 + 0.3 - now()))
        assert len(u.events_of("session.update")) == 1
        done2 = send_at(u, done("resp_2"))
        await assert_right_after(u, "session.update", done2, nth=1)
        assert up_of(u, "session.update")[1] == prompt_update("Be brief.\nAnswer in French.")
        audio_dones = [m.t for m in c.messages[mark:] if m.type == "AgentAudioDone"]
        assert len(audio_dones) == 2
        assert done1 <= audio_dones[0] < done2 <= audio_dones[1]
        assert sum(c.stats.violations.values()) == 0
        assert c.stats.turns_started == {"scripted": 1, "server": 1}
        assert sum(c.stats.turns_completed.values()) == 2
