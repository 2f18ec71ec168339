"""PROTOCOL.md §13.3 (Settings and readiness), P-18 ... P-33 and P-122, at the Session level.

All of them are expressible with the sans-I/O Session; the mock's handshake delays become the
time of ``UpstreamOpened`` and of the ``session.updated`` on the virtual clock.
"""

from __future__ import annotations

from typing import Any

import pytest
from spec_examples import (
    P19_SESSION,
    P19_SETTINGS,
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

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]


def _open() -> H.Harness:
    h = H.Harness()
    h.start()
    h.open_upstream()
    return h


def _session_for(settings: dict[str, Any], **opts: Any) -> tuple[H.Harness, dict[str, Any]]:
    h = H.Harness(**opts)
    h.start()
    h.open_upstream()
    h.client(settings)
    ups = h.up("session.update")
    assert len(ups) == 1, h.sent_upstream
    assert set(ups[0]) == {"type", "session"}
    return h, ups[0]["session"]


def test_p18_minimal_settings() -> None:
    h = _open()
    h.client({"type": "Settings"})
    assert h.sent_upstream == [{"type": "session.update", "session": H.default_session()}]
    assert h.client_types() == ["Welcome"]


def test_p19_full_field_map() -> None:
    h, session = _session_for(P19_SETTINGS)
    assert session == P19_SESSION
    assert h.warnings() == []


def test_p20_never_sent_fields() -> None:
    _h, session = _session_for(p20_settings())
    assert session == P19_SESSION


def test_p21_wrongly_typed_fields() -> None:
    h, session = _session_for(P21_SETTINGS)
    warns = h.warnings()
    assert len(warns) == 1 and warns[0]["code"] == "settings_field_ignored"
    assert set(warns[0]) == {"type", "code", "description"}
    d = warns[0]["description"]
    for path in P21_IGNORED_PATHS:
        assert path in d, (path, d)
    assert session["instructions"] == ""
    assert "tools" not in session and "tool_choice" not in session
    h.clear()
    h.upstream(H.session_updated())
    assert h.client_json() == [{"type": "SettingsApplied"}]


@pytest.mark.parametrize(("think", "key", "value"), P22_CASES)
def test_p22_value_normalisation(think: dict[str, Any], key: str, value: Any) -> None:
    h, session = _session_for({"type": "Settings", "agent": {"think": think}})
    if value is None:
        assert key not in session
        assert len(h.warnings("settings_field_ignored")) == 1
        assert len(h.warnings()) == 1
    else:
        assert session[key] == value
        assert h.warnings() == []


@pytest.mark.parametrize(("mode", "expected"), [("semantic_vad", H.SEMANTIC_VAD), ("manual", None)])
def test_p23_turn_detection_modes(mode: str, expected: Any) -> None:
    _h, session = _session_for(P23_SETTINGS, turn_detection=mode)
    td = session["audio"]["input"]
    assert "turn_detection" in td
    assert td["turn_detection"] == expected


@pytest.mark.parametrize(
    ("idle", "expected", "warned"),
    [
        *((value, expected, False) for value, expected in P24_IDLE_TIMEOUTS),
        ("<absent>", None, False),
        ("10s", None, True),
    ],
)
def test_p24_idle_timeout(idle: Any, expected: int | None, warned: bool) -> None:
    agent: dict[str, Any] = {} if idle == "<absent>" else {"idleTimeoutMs": idle}
    h, session = _session_for({"type": "Settings", "agent": agent})
    td = session["audio"]["input"]["turn_detection"]
    if expected is None:
        assert td == H.SERVER_VAD
    else:
        assert td == {**H.SERVER_VAD, "idle_timeout_ms": expected}
        assert type(td["idle_timeout_ms"]) is int  # J2: an integer, not 7501.0
    if warned:
        warns = h.warnings("settings_field_ignored")
        assert len(warns) == 1 and "agent.idleTimeoutMs" in warns[0]["description"]
    else:
        assert h.warnings() == []


def test_p25_transcription_settings() -> None:
    _h, session = _session_for(
        {"type": "Settings"},
        transcription_model="gpt-4o-mini-transcribe",
        transcription_language="fr",
    )
    assert session["audio"]["input"]["transcription"] == P25_TRANSCRIPTION


def test_p26_think_and_speak_as_lists() -> None:
    h, session = _session_for(P26_SETTINGS)
    assert session["model"] == "m1"
    assert session["instructions"] == "A"
    assert session["audio"]["output"]["voice"] == "marin"
    assert h.warnings() == []


def test_p27_duplicate_settings_after_ready() -> None:
    h = H.ready_harness()
    h.client(H.S0)
    h.client({"type": "Settings", "agent": {"think": {"prompt": "Other"}}})
    assert h.client_json() == [{"type": "SettingsApplied"}, {"type": "SettingsApplied"}]
    assert h.sent_upstream == []
    assert [m["type"] for m in h.all_upstream].count("session.update") == 1


def test_p28_duplicate_settings_before_ready() -> None:
    h = _open()
    h.client(H.S0)
    h.at(10)
    h.client(H.S0)
    h.at(199)
    assert h.client_types() == ["Welcome"]
    h.at(200)
    h.upstream(H.session_updated())
    assert h.client_types() == ["Welcome", "SettingsApplied", "SettingsApplied"]
    assert h.upstream_types() == ["session.update"]


def test_p29_settings_never_cause_session_update_during_response() -> None:
    h = H.ready_harness()
    h.upstream(H.response_created("resp_1"))
    new = {"type": "Settings", "agent": {"think": {"prompt": "New"}}}
    h.client(new)
    h.upstream(H.audio_done("resp_1", "item_a1"))
    h.upstream(H.text_done("resp_1", "item_a1", "Hello."))
    h.upstream(H.response_done("resp_1"))
    h.client(new)
    assert h.count_client("SettingsApplied") == 2
    assert h.count_up("session.update") == 0


def test_p30_session_created_is_not_readiness() -> None:
    h = H.Harness()
    h.start()
    h.open_upstream()  # session.created
    h.client({"type": "Settings", "agent": {"greeting": "Hi there!"}})
    h.at(99)
    assert h.client_types() == ["Welcome"]
    h.at(100)
    h.upstream(H.session_updated())
    types = h.client_types(history=False)
    assert types == ["Welcome", "SettingsApplied", "ConversationText"]
    assert h.client_json("ConversationText") == [
        {"type": "ConversationText", "role": "assistant", "content": "Hi there!"}
    ]


def test_p31_unsolicited_session_updated_before_settings() -> None:
    h = H.Harness()
    h.start()
    h.open_upstream()
    h.upstream(H.session_updated())
    h.at(100)
    audio = H.A_bytes(960)
    h.client_audio(audio)
    assert h.client_types() == ["Welcome"]
    assert h.sent_upstream == []
    h.client(H.S0)
    h.upstream(H.session_updated())
    assert h.count_client("SettingsApplied") == 1
    assert h.upstream_types() == ["session.update", "input_audio_buffer.append"]
    assert h.appended() == [audio]


def test_p32_later_unsolicited_session_updated() -> None:
    h = H.ready_harness(P32_SETTINGS)
    assert [m["type"] for m in h.all_upstream].count("conversation.item.create") == 1
    h.upstream(H.session_updated())
    assert h.to_client == []
    assert h.sent_upstream == []


def test_p33_settings_rejected_by_upstream() -> None:
    h = _open()
    h.client({"type": "Settings", "agent": {"think": {"provider": {"model": "nope"}}}})
    e = h.last_event_id("session.update")
    h.upstream(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": "Invalid model",
                "event_id": e,
            },
        }
    )
    assert h.client_json()[1:] == [
        {"type": "Error", "description": "Invalid model", "code": "invalid_value"}
    ]
    assert h.count_client("SettingsApplied") == 0
    assert h.client_close == (1008, "invalid_value")
    assert h.upstream_close is not None and h.upstream_close[0] == 1000


def test_p122_readiness_timeout() -> None:
    h = H.Harness(ready_timeout_ms=500)
    h.start()
    h.at(10)
    h.client(H.S0)
    h.at(300)
    h.open_upstream()
    assert h.upstream_types() == ["session.update"]
    assert h.upstream_times == [300]
    h.at(799.9)
    assert h.client_types() == ["Welcome"]
    assert h.client_close is None
    h.at(800)
    assert h.client_types() == ["Welcome", "Error"]
    err = h.client_json("Error")[0]
    assert err["code"] == "upstream_unavailable" and "session.update" in err["description"]
    assert h.times_client("Error") == [800]
    assert h.client_close is not None and h.client_close[0] == 1011
    assert h.upstream_close is not None and h.upstream_close[0] == 1000
    h.advance(1000)
    assert h.count_client("SettingsApplied") == 0
