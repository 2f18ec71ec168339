"""PROTOCOL.md §13.6 (response gating), P-51 ... P-70, P-118 ... P-121 and P-123, at the Session
level. All of them are expressible: the mock upstream's confirmations, scripted responses and
delays run on the harness's virtual clock.
"""

from __future__ import annotations

from fastproxy.protocol import events as E

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]

FRENCH = "Answer in French."
FRENCH_UPDATE = {
    "type": "session.update",
    "session": {"type": "realtime", "instructions": "Be brief.\nAnswer in French."},
}


def _is_upstream_text(entry: tuple, type_: str) -> bool:
    _t, kind, ev = entry
    return (
        kind == "event"
        and isinstance(ev, E.UpstreamText)
        and (f'"type":"{type_}"'.encode() in ev.data)
    )


def _index_of_event(h: H.Harness, type_: str, nth: int = 0) -> int:
    idx = [i for i, e in enumerate(h.trace) if _is_upstream_text(e, type_)]
    return idx[nth]


def _indices_up(h: H.Harness, type_: str) -> list[int]:
    return [i for i, e in enumerate(h.trace) if e[1] == "upstream" and e[2]["type"] == type_]


def test_p51_inject_translation_and_echo() -> None:
    h = H.ready_harness()
    h.client(H.inject_user("What is 2 plus 2?"))
    assert h.sent_upstream == [H.item_create(H.user_item("fp_1", "What is 2 plus 2?"))]
    assert h.client_json() == [
        {"type": "ConversationText", "role": "user", "content": "What is 2 plus 2?"},
        {"type": "History", "role": "user", "content": "What is 2 plus 2?"},
    ]
    h.advance(500)
    assert h.count_up("response.create") == 0


def test_p52_response_create_after_confirmation() -> None:
    h = H.ready_harness()
    h.client(H.inject_user("What is 2 plus 2?"))
    h.advance(100)
    h.clear()
    step = h.upstream(
        {
            "type": "conversation.item.added",
            "previous_item_id": None,
            "item": H.user_item("fp_1", "What is 2 plus 2?"),
        }
    )
    assert step.upstream == [H.RESPONSE_CREATE]
    assert step.client == []
    h.advance(500)
    assert h.sent_upstream == [H.RESPONSE_CREATE]


def test_p53_each_id_counts_once() -> None:
    h = H.ready_harness()
    h.client(H.inject_user("What is 2 plus 2?"))
    h.upstream(H.item_event("created", H.user_item("fp_1", "What is 2 plus 2?")))
    h.upstream(H.item_event("done", H.user_item("fp_1", "What is 2 plus 2?")))
    h.upstream(H.response_created("resp_1"))
    h.upstream(
        {
            "type": "response.output_text.done",
            "response_id": "resp_1",
            "item_id": "item_a1",
            "output_index": 0,
            "content_index": 0,
            "text": "Four.",
        }
    )
    h.upstream(H.response_done("resp_1"))
    assert h.count_up("response.create") == 1
    assert {"type": "ConversationText", "role": "assistant", "content": "Four."} in h.client_json(
        "ConversationText"
    )


def test_p54_other_items_do_not_confirm() -> None:
    h = H.ready_harness()
    h.client(H.inject_user("Hi"))
    h.upstream(
        {
            "type": "conversation.item.added",
            "item": {"id": "item_other", "type": "message", "role": "assistant"},
        }
    )
    h.upstream({"type": "conversation.item.created"})
    h.advance(100)
    assert h.count_up("response.create") == 0
    h.upstream(H.item_event("added", H.user_item("fp_1", "Hi")))
    assert h.count_up("response.create") == 1
    h.advance(500)
    assert h.count_up("response.create") == 1


def test_p55_inject_during_a_response() -> None:
    h = H.ready_harness()
    h.confirm_items = True
    h.upstream(H.response_created("resp_1"))
    h.client(H.inject_user("Also, what time is it?"))
    assert h.sent_upstream == [H.item_create(H.user_item("fp_1", "Also, what time is it?"))]
    h.advance(1000)
    assert h.count_up("response.create") == 0
    step = h.upstream(H.response_done("resp_1"))
    assert step.upstream == [H.RESPONSE_CREATE]
    h.advance(500)
    assert h.count_up("response.create") == 1


def test_p56_coalescing() -> None:
    h = H.ready_harness()
    h.confirm_items = True
    h.upstream(H.response_created("resp_1"))
    h.client(H.inject_user("One"))
    h.client(H.inject_user("Two"))
    assert [m["item"]["id"] for m in h.up("conversation.item.create")] == ["fp_1", "fp_2"]
    h.upstream(H.response_done("resp_1"))
    h.advance(500)
    assert h.count_up("response.create") == 1


def test_p57_function_result_after_response_done() -> None:
    h = H.run_p57()
    assert h.up("conversation.item.create")[1] == H.item_create(
        {
            "id": "fp_2",
            "type": "function_call_output",
            "call_id": "call_1",
            "output": '{"time":"12:00"}',
        }
    )
    assert h.count_up("response.create") == 2
    # the second response.create follows the confirmation of fp_2
    fco = _indices_up(h, "conversation.item.create")[1]
    creates = _indices_up(h, "response.create")
    assert creates[1] > fco
    # the client receives AgentThinking after (in answer to) its FunctionCallResponse
    fcr_in = h.trace_index(
        lambda e: (
            e[1] == "event"
            and isinstance(e[2], E.ClientText)
            and b"FunctionCallResponse" in e[2].data
        )
    )
    thinking = [
        i
        for i, e in enumerate(h.trace)
        if e[1] == "client"
        and e[2][0] == "json"
        and e[2][1] == {"type": "AgentThinking", "content": ""}
    ]
    assert thinking and thinking[0] > fcr_in


def test_p58_function_result_while_its_response_runs() -> None:
    h = H.run_p57(answer_late=False)
    assert h.count_up("conversation.item.create") == 2
    h.advance(200)
    assert h.count_up("response.create") == 1
    step = h.upstream(H.response_done("resp_1"))
    assert step.upstream == [H.RESPONSE_CREATE]
    h.advance(500)
    assert h.count_up("response.create") == 2


def test_p59_only_response_done_ends_a_response() -> None:
    h = H.run_p57(answer_late=False)
    h.upstream(H.audio_done("resp_1", "item_a1"))
    h.advance(300)
    h.upstream(H.text_done("resp_1", "item_a1", "One moment."))
    h.advance(300)
    assert h.count_up("response.create") == 1
    step = h.upstream(H.response_done("resp_1"))
    assert step.upstream == [H.RESPONSE_CREATE]
    assert h.count_up("response.create") == 2


def test_p60_parallel_function_calls() -> None:
    h = H.ready_harness(H.settings_with(think={"functions": [{"name": "get_time"}]}))
    h.confirm_items = True
    h.upstream(H.response_created("resp_1"))
    h.upstream(H.function_call_done("resp_1", "call_1", "get_time", iid="item_f1"))
    h.upstream(H.function_call_done("resp_1", "call_2", "get_time", iid="item_f2"))
    h.upstream(H.response_done("resp_1"))
    assert len(h.client_json("FunctionCallRequest")) == 2
    h.client(H.fcr("call_1", "a"))
    h.at(199)
    assert h.count_up("response.create") == 0
    h.at(200)
    h.client(H.fcr("call_2", "b"))
    assert h.count_up("response.create") == 1
    confirm_fp2 = next(
        i
        for i, e in enumerate(h.trace)
        if _is_upstream_text(e, "conversation.item.added") and b'"fp_2"' in e[2].data
    )
    assert _indices_up(h, "response.create")[0] > confirm_fp2
    h.advance(500)
    assert h.count_up("response.create") == 1


def test_p61_late_confirmation_of_the_user_item() -> None:
    h = H.ready_harness(H.settings_with(think={"functions": [{"name": "get_time"}]}))
    h.confirm_items = lambda item: item.get("type") == "function_call_output"
    h.client(H.inject_user("What time is it?"))
    h.upstream(H.response_created("resp_1"))
    h.upstream(H.function_call_done("resp_1", "call_1", "get_time"))
    h.upstream(H.response_done("resp_1"))
    h.client(H.fcr("call_1", '{"time":"12:00"}'))
    h.advance(100)
    assert h.count_up("response.create") == 0
    h.upstream(H.item_event("added", H.user_item("fp_1", "What time is it?")))
    assert h.count_up("response.create") == 1
    assert _indices_up(h, "response.create")[0] > _index_of_event(h, "conversation.item.added", 1)
    h.advance(1000)
    assert h.count_up("response.create") == 1


def test_p62_upstream_created_responses_occupy_the_slot() -> None:
    h = H.ready_harness()
    h.upstream(H.response_created("resp_1"))
    h.client(H.update_prompt(FRENCH))
    h.advance(1000)
    assert h.count_up("session.update") == 0
    step = h.upstream(H.response_done("resp_1"))
    assert step.upstream == [FRENCH_UPDATE]


def test_p63_fifo_order() -> None:
    h = H.ready_harness()
    h.confirm_items = True
    h.upstream(H.response_created("resp_1"))
    h.client(H.update_prompt(FRENCH))
    h.client(H.inject_user("Hello"))
    assert h.sent_upstream == [H.item_create(H.user_item("fp_1", "Hello"))]
    step = h.upstream(H.response_done("resp_1"))
    assert step.upstream == [FRENCH_UPDATE, H.RESPONSE_CREATE]


def test_p64_active_response_conflicts_are_swallowed() -> None:
    h = H.ready_harness()
    h.upstream(H.response_created("resp_1"))
    h.upstream(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "conversation_already_has_active_response",
                "message": "Conversation already has an active response",
            },
        }
    )
    assert h.to_client == []
    assert h.stats.violations["active_response_conflict"] == 1
    assert h.stats.upstream_errors["conversation_already_has_active_response"] == 1
    # the slot stays active: an UpdatePrompt waits
    h.client(H.update_prompt(FRENCH))
    assert h.count_up("session.update") == 0
    h.upstream(H.response_done("resp_1"))
    assert h.count_up("session.update") == 1


def test_p65_errors_do_not_end_a_response() -> None:
    h = H.ready_harness()
    h.upstream(H.response_created("resp_1"))
    h.upstream(
        {
            "type": "error",
            "error": {"type": "server_error", "code": "server_error", "message": "Oops"},
        }
    )
    assert h.client_json() == [{"type": "Error", "description": "Oops", "code": "server_error"}]
    h.client(H.update_prompt(FRENCH))
    h.advance(1000)
    assert h.count_up("session.update") == 0
    step = h.upstream(H.response_done("resp_1"))
    assert step.upstream == [FRENCH_UPDATE]


def test_p66_rejected_update_is_retried() -> None:
    h = H.ready_harness()
    h.client(H.update_prompt("X"))
    assert h.up("session.update") == [
        {"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief.\nX"}}
    ]
    e = h.last_event_id("session.update")
    h.upstream(H.response_created("resp_1"))
    h.upstream(H.conflict_error(e))
    assert h.to_client == []
    h.advance(300)
    assert h.count_up("session.update") == 1
    h.upstream(H.response_done("resp_1"))
    ups = h.up("session.update")
    assert len(ups) == 2
    assert ups[1] == {
        "type": "session.update",
        "session": {"type": "realtime", "instructions": "Be brief.\nX"},
    }
    assert h.last_event_id("session.update") != e
    h.clear()
    h.upstream(H.session_updated())
    assert h.client_json() == [{"type": "PromptUpdated"}]
    assert h.sent_upstream == []


def test_p67_rejected_item() -> None:
    h = H.ready_harness()
    h.client(H.inject_user("Hello"))
    e = h.item_event_id("fp_1")
    h.upstream(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": "Bad item",
                "event_id": e,
            },
        }
    )
    assert h.client_json("Error") == [
        {"type": "Error", "description": "Bad item", "code": "invalid_value"}
    ]
    h.advance(60000)
    assert h.count_up("response.create") == 0
    assert h.warnings() == []
    # a later inject works normally
    h.confirm_items = True
    h.client(H.inject_user("Again"))
    assert h.up("conversation.item.create")[-1] == H.item_create(H.user_item("fp_2", "Again"))
    assert h.count_up("response.create") == 1


def test_p68_safety_timeout_no_confirmation() -> None:
    h = H.ready_harness(sequencer_timeout_ms=500)
    h.client(H.inject_user("Hello"))
    h.at(499.9)
    assert h.count_up("response.create") == 0 and h.warnings() == []
    h.at(500)
    assert h.times_up("response.create") == [500]
    warns = h.warnings("sequencer_timeout")
    assert len(warns) == 1 and "fp_1" in warns[0]["description"]
    assert h.times_client("Warning") == [500]
    h.at(900)
    assert h.stats.violations["sequencer_timeout"] == 1
    # the response.create is never answered: T19 follows a full timeout later
    h.at(1000)
    assert len(h.warnings("sequencer_timeout")) == 2
    assert h.stats.violations["sequencer_timeout"] == 2
    assert h.count_up("response.create") == 1


def test_p69_safety_timeout_no_response_done() -> None:
    h = H.ready_harness(sequencer_timeout_ms=500)
    h.confirm_items = True
    h.client(H.inject_user("Hello"))
    assert h.times_up("response.create") == [0]
    h.at(100)
    h.client(H.update_prompt(FRENCH))
    h.at(499.9)
    assert h.count_up("session.update") == 0 and h.warnings() == []
    h.at(500)
    assert len(h.warnings("sequencer_timeout")) == 1
    assert h.times_client("Warning") == [500]
    assert h.up("session.update") == [FRENCH_UPDATE]
    assert h.times_up("session.update") == [500]


def test_p70_streaming_keeps_the_timer_alive() -> None:
    h = H.ready_harness(sequencer_timeout_ms=500)
    h.upstream(H.response_created("resp_1"))
    for k in range(8):  # t = 0, 200, ..., 1400
        h.at(200 * k)
        h.upstream(H.audio_delta("resp_1", "item_a1", H.A_bytes(960, 960 * k)))
        if k == 0:
            h.at(100)
            h.client(H.update_prompt(FRENCH))
    h.at(1500)
    assert h.warnings() == []
    assert h.count_up("session.update") == 0
    step = h.upstream(H.response_done("resp_1"))
    assert step.upstream == [FRENCH_UPDATE]
    assert h.warnings() == []
    assert h.stats.violations["sequencer_timeout"] == 0


def test_p118_several_rejected_updates_keep_their_order() -> None:
    h = H.ready_harness()
    h.client(H.update_prompt("X"))
    h.client(H.update_prompt("Y"))
    ups = h.up("session.update")
    assert [u["session"] for u in ups] == [
        {"type": "realtime", "instructions": "Be brief.\nX"},
        {"type": "realtime", "instructions": "Be brief.\nX\nY"},
    ]
    e1, e2 = [
        eid
        for m, eid in zip(h.sent_upstream, h.upstream_ids, strict=True)
        if m["type"] == "session.update"
    ]
    h.upstream(H.response_created("resp_1"))
    h.upstream(H.conflict_error(e1))
    h.upstream(H.conflict_error(e2))
    assert h.to_client == []
    h.clear()
    h.upstream(H.response_done("resp_1"))
    assert (
        h.sent_upstream
        == [
            {
                "type": "session.update",
                "session": {"type": "realtime", "instructions": "Be brief.\nX\nY"},
            },
        ]
        * 2
    )
    assert len(set(h.upstream_ids)) == 2 and not {e1, e2} & set(h.upstream_ids)
    # resp_1's response.done sent its AgentAudioDone (§8.3); then the two answers
    assert h.client_json() == [{"type": "AgentAudioDone"}]
    h.upstream(H.session_updated())
    h.upstream(H.session_updated())
    assert h.client_json()[1:] == [{"type": "PromptUpdated"}, {"type": "PromptUpdated"}]


def test_p119_blocked_head_gets_a_fresh_timer() -> None:
    h = H.ready_harness(
        H.settings_with(think={"functions": [{"name": "get_time"}]}), sequencer_timeout_ms=1000
    )
    h.confirm_items = lambda item: item.get("type") == "function_call_output"
    h.confirm_delay_ms = 1000
    h.upstream(H.response_created("resp_1"))
    h.at(200)
    h.upstream(H.function_call_done("resp_1", "call_1", "get_time"))
    h.at(250)
    h.client(H.fcr("call_1", '{"time":"12:00"}'))
    assert h.up("conversation.item.create")[0]["item"]["id"] == "fp_1"
    h.at(600)
    h.upstream(H.response_done("resp_1"))
    h.at(2000)
    assert h.warnings() == []
    assert h.times_up("response.create") == [1250]
    assert _indices_up(h, "response.create")[0] > _index_of_event(h, "conversation.item.added")


def test_p120_repeated_function_result_adds_no_turn() -> None:
    h = H.run_p116()
    h.clear()
    h.client(H.fcr("call_1", '{"time":"12:00"}'))
    fco = h.up("conversation.item.create")
    assert len(fco) == 1
    assert fco[0]["item"]["id"] == "fp_3"
    assert fco[0]["item"]["type"] == "function_call_output"
    assert fco[0]["item"]["call_id"] == "call_1"
    h.advance(500)
    assert h.count_up("response.create") == 0
    assert {"type": "AgentThinking", "content": ""} in h.client_json()
    hist = h.client_json("History")
    assert len(hist) == 1 and "function_calls" in hist[0]


def test_p121_rejected_response_create_frees_the_slot() -> None:
    h = H.ready_harness(sequencer_timeout_ms=1000)
    h.confirm_items = True

    def reject(hh: H.Harness, eid: str | None, _obj: dict) -> None:
        hh._reply(
            0,
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": "invalid_value",
                    "message": "Bad response",
                    "event_id": eid,
                },
            },
        )

    h.on_response_create = reject
    h.client(H.inject_user("Hello"))
    assert h.count_up("response.create") == 1
    assert h.client_json("Error") == [
        {"type": "Error", "description": "Bad response", "code": "invalid_value"}
    ]
    h.clear()
    h.client(H.update_prompt(FRENCH))
    assert h.sent_upstream == [FRENCH_UPDATE]
    h.advance(1500)
    assert h.warnings() == []
    assert dict(h.stats.turns_started) == {"reply": 1}
    assert dict(h.stats.turns_completed) == {"failed": 1}


def test_p123_overlapping_responses_hold_the_slot() -> None:
    h = H.ready_harness()
    h.confirm_items = True
    h.script_responses([H.response_created("resp_1")])
    h.client(H.inject_agent("Please hold."))
    assert h.count_up("response.create") == 1
    h.upstream(H.response_created("resp_2"))
    h.client(H.update_prompt(FRENCH))
    step1 = h.upstream(H.response_done("resp_1"))
    assert step1.client_json("AgentAudioDone") == [{"type": "AgentAudioDone"}]
    assert step1.upstream == []
    h.advance(300)
    assert h.count_up("session.update") == 0
    step2 = h.upstream(H.response_done("resp_2"))
    assert step2.upstream == [FRENCH_UPDATE]
    assert step2.client_json("AgentAudioDone") == [{"type": "AgentAudioDone"}]
    assert h.total_violations() == 0
    assert dict(h.stats.turns_started) == {"scripted": 1, "server": 1}
    assert sum(h.stats.turns_completed.values()) == 2
