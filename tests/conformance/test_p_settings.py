"""§13.3 Settings and readiness: P-18 … P-33 and P-122, end to end over real sockets."""

from __future__ import annotations

import asyncio

from e2e_kit import (
    DEFAULT_SESSION,
    S0,
    SEMANTIC_VAD,
    SERVER_VAD,
    A,
    audio_done,
    created,
    done,
    now,
    text_done,
    up_appended,
    up_of,
    up_types,
)
from spec_examples import (
    P19_SESSION,
    P19_SETTINGS,
    P20_NEVER_SENT,
    P21_IGNORED_PATHS,
    P21_SETTINGS,
    P22_CASES,
    P23_SETTINGS,
    P24_IDLE_TIMEOUTS,
    P25_TRANSCRIPTION,
    P26_SETTINGS,
    P32_SETTINGS,
    p20_settings,
)


async def session_of(e, settings):
    """READY-setup with ``settings``; returns (the session.update's session, the client)."""
    c = await e.ready(settings)
    updates = up_of(c.up, "session.update")
    assert len(updates) == 1
    assert set(updates[0]) == {"type", "session"}
    return updates[0]["session"], c


async def test_p18_minimal_settings(env):
    async with env() as e:
        session, c = await session_of(e, {"type": "Settings"})
        assert session == DEFAULT_SESSION
        assert c.types() == ["Welcome", "SettingsApplied"]


async def test_p19_full_field_map(env):
    async with env() as e:
        session, c = await session_of(e, P19_SETTINGS)
        assert session == P19_SESSION
        assert c.of("Warning") == []


async def test_p20_never_sent_fields(env):
    async with env() as e:
        session, _ = await session_of(e, p20_settings())
        assert session == P19_SESSION

        def keys(o):
            if isinstance(o, dict):
                for k, v in o.items():
                    yield k
                    yield from keys(v)
            elif isinstance(o, list):
                for v in o:
                    yield from keys(v)

        assert not set(P20_NEVER_SENT) & set(keys(session))
        assert "voice" not in session


async def test_p21_wrongly_typed_fields(env):
    async with env() as e:
        session, c = await session_of(e, P21_SETTINGS)
        await e.quiet(c, window=0.3)
        warnings = c.of("Warning")
        assert len(warnings) == 1 and warnings[0]["code"] == "settings_field_ignored"
        for path in P21_IGNORED_PATHS:
            assert path in warnings[0]["description"]
        assert session["instructions"] == ""
        assert "tools" not in session and "tool_choice" not in session
        assert c.types() == ["Welcome", "Warning", "SettingsApplied"]


async def test_p22_value_normalisation(env):
    async with env() as e:
        for think, key, expected in P22_CASES:
            session, c = await session_of(e, {"type": "Settings", "agent": {"think": think}})
            warnings = c.of("Warning")
            if expected is None:
                assert key not in session, think
                assert len(warnings) == 1, think
                assert warnings[0]["code"] == "settings_field_ignored"
            else:
                assert session[key] == expected, think
                assert warnings == [], think
            c.close()


async def test_p23_turn_detection_modes(env):
    async with env(turn_detection="semantic_vad") as e:
        session, _ = await session_of(e, P23_SETTINGS)
        assert session["audio"]["input"]["turn_detection"] == SEMANTIC_VAD
    async with env(turn_detection="manual") as e:
        session, _ = await session_of(e, P23_SETTINGS)
        assert "turn_detection" in session["audio"]["input"]
        assert session["audio"]["input"]["turn_detection"] is None


async def test_p24_idle_timeout(env):
    async with env() as e:
        for value, expected in [*P24_IDLE_TIMEOUTS, ("absent", None), ("10s", None)]:
            agent = {} if value == "absent" else {"idleTimeoutMs": value}
            session, c = await session_of(e, {"type": "Settings", "agent": agent})
            vad = session["audio"]["input"]["turn_detection"]
            if expected is None:
                assert vad == SERVER_VAD, value
            else:
                assert vad == {**SERVER_VAD, "idle_timeout_ms": expected}, value
            warnings = c.of("Warning")
            if value == "10s":
                assert len(warnings) == 1
                assert warnings[0]["code"] == "settings_field_ignored"
                assert "agent.idleTimeoutMs" in warnings[0]["description"]
            else:
                assert warnings == [], value
            c.close()


async def test_p25_transcription_settings(env):
    async with env(transcription_model="gpt-4o-mini-transcribe", transcription_language="fr") as e:
        session, _ = await session_of(e, {"type": "Settings"})
        assert session["audio"]["input"]["transcription"] == P25_TRANSCRIPTION


async def test_p26_think_and_speak_as_lists(env):
    async with env() as e:
        session, c = await session_of(e, P26_SETTINGS)
        assert session["model"] == "m1"
        assert session["instructions"] == "A"
        assert session["audio"]["output"]["voice"] == "marin"
        assert c.of("Warning") == []


async def test_p27_duplicate_settings_after_ready(env):
    async with env() as e:
        c = await e.ready()
        mark = c.mark()
        c.send(S0)
        c.send({"type": "Settings", "agent": {"think": {"prompt": "Other"}}})
        await c.wait_type("SettingsApplied", count=2, since=mark)
        await e.quiet(c, c.up)
        assert c.json(mark) == [{"type": "SettingsApplied"}] * 2
        assert up_types(c.up) == ["session.update"]


async def test_p28_duplicate_settings_before_ready(env):
    async with env(mock={"session_updated_delay_ms": 200}) as e:
        c = await e.connect()
        u = await e.upstream_for(0)
        t0 = now()
        c.send(S0)
        await asyncio.sleep(0.01)
        c.send(S0)
        await c.wait_type("SettingsApplied", count=2)
        first = c.first("SettingsApplied")
        assert first.t - t0 >= 0.18
        assert c.types() == ["Welcome", "SettingsApplied", "SettingsApplied"]
        await e.quiet(c, u, window=0.3)
        assert up_types(u) == ["session.update"]


async def test_p29_settings_never_cause_update_during_response(env):
    async with env() as e:
        c = await e.ready()
        u = c.up
        mark = c.mark()
        u.send(created("resp_1"))
        new = {"type": "Settings", "agent": {"think": {"prompt": "New"}}}
        c.send(new)
        await c.wait_type("SettingsApplied", since=mark)
        u.send(audio_done("resp_1", "item_a1"))
        u.send(text_done("resp_1", "item_a1", "Ok."))
        u.send(done("resp_1"))
        await c.wait_type("AgentAudioDone", since=mark)
        c.send(new)
        await c.wait_type("SettingsApplied", count=2, since=mark)
        await e.quiet(c, u, window=0.3)
        assert len(c.of("SettingsApplied", mark)) == 2
        assert up_types(u) == ["session.update"]


async def test_p30_session_created_is_not_readiness(env):
    async with env(mock={"session_updated_delay_ms": 100}) as e:
        c = await e.connect()
        u = await e.upstream_for(0)
        t0 = now()
        c.send({"type": "Settings", "agent": {"greeting": "Hi there!"}})
        await c.wait_type("ConversationText")
        await e.quiet(c, window=0.3)
        applied = c.first("SettingsApplied")
        assert applied.t - t0 >= 0.09
        assert c.types()[:3] == ["Welcome", "SettingsApplied", "ConversationText"]
        assert c.json()[2] == {
            "type": "ConversationText",
            "role": "assistant",
            "content": "Hi there!",
        }
        assert c.of("SettingsApplied") == [{"type": "SettingsApplied"}]
        assert up_types(u) == ["session.update"]


async def test_p31_unsolicited_session_updated_before_settings(env):
    async with env(mock={"session_updated_on_open": True}) as e:
        c = await e.connect()
        u = await e.upstream_for(0)
        await u.wait_for(lambda u: u.connected_at)
        await asyncio.sleep(0.1)
        audio = A(960)
        c.send_binary(audio)
        await e.quiet(c, u, window=0.3)
        assert c.types() == ["Welcome"]
        assert up_appended(u) == []
        c.send(S0)
        await c.wait_type("SettingsApplied")
        await u.wait_for_event("input_audio_buffer.append")
        await e.quiet(c, u, window=0.3)
        assert c.types() == ["Welcome", "SettingsApplied"]
        assert up_types(u) == ["session.update", "input_audio_buffer.append"]
        assert up_appended(u) == [audio]


async def test_p32_later_unsolicited_session_updated(env):
    async with env() as e:
        c = await e.ready(P32_SETTINGS)
        u = c.up
        await u.wait_for_event("conversation.item.create")
        mark = c.mark()
        u.send({"type": "session.updated", "session": {"type": "realtime"}})
        await e.quiet(c, u)
        assert c.types(mark) == []
        assert up_types(u) == ["session.update", "conversation.item.create"]


async def test_p33_settings_rejected_by_upstream(env):
    async with env() as e:
        e.answer_updates(reject={0: ("invalid_value", "Invalid model")})
        c = await e.connect()
        u = await e.upstream_for(0)
        c.send({"type": "Settings", "agent": {"think": {"provider": {"model": "nope"}}}})
        await c.wait_closed()
        assert c.types() == ["Welcome", "Error"]
        assert c.json()[1] == {
            "type": "Error",
            "description": "Invalid model",
            "code": "invalid_value",
        }
        assert c.close_code == 1008
        await u.wait_closed()
        assert u.close_code == 1000


async def test_p122_readiness_timeout(env):
    async with env(
        ready_timeout_ms=500, mock={"handshake_delay_ms": 300, "answer_session_update": False}
    ) as e:
        c = await e.connect()
        t0 = now()
        await asyncio.sleep(0.01)
        c.send(S0)
        await c.wait_closed(timeout=5)
        u = e.mock.connection(0)
        (sent_at,) = [r.t for r in u.received if r.type == "session.update"]
        assert 0.28 <= sent_at - t0 <= 0.6
        assert c.types() == ["Welcome", "Error"]
        err = c.messages[1]
        assert err.obj["code"] == "upstream_unavailable"
        assert "session.update" in err.obj["description"]
        assert 0.48 <= err.t - sent_at <= 0.9  # the timer counts from the send
        assert err.t - t0 >= 0.78
        assert c.close_code == 1011
        await u.wait_closed()
        assert u.close_code == 1000
