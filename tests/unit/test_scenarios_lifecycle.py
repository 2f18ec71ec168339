"""PROTOCOL.md §13.2 (lifecycle and wire), P-01 ... P-17, at the Session level.

Needs sockets (covered by tests/conformance); only the Session-level part is checked here:

- P-01 upgrade paths, 101/404 and plain GET: HTTP routing is the server's. Here: the Session's
  first and only action on accept is the ``Welcome``.
- P-02 the upstream ``Authorization``/``OpenAI-Beta`` headers and the one upstream socket. Here:
  ``Welcome`` carries the connection id and nothing is sent upstream while the client is silent.
- P-03 ``trace_id``/``connection_id`` on every log record are added by the network layer's
  logger from the upgrade request; nothing of it is expressible on ``Log`` actions.
- P-06 the connect timer (``upstream_connect_timeout_ms``) runs in the network layer. Here: the
  Session's answer to ``UpstreamConnectFailed("timeout ...")``.
- P-11 abandoning a handshake in flight and a second client on the same server.
- P-12 SIGTERM, the ``503 draining`` for new upgrades and the drain clock. Here: the pair keeps
  working until ``DrainDeadline`` and then closes 1001/1001.
- P-14 WebSocket fragmentation/reassembly. Here: the reassembled messages.
- P-15 the size check (``max_client_message_bytes``) happens while reassembling. Here: the
  Session's answer to ``ClientMessageTooLarge`` and a 1 MiB message relayed normally.

After the scenarios: rows of the §3.6 teardown table that no scenario states (``test_rule_*``).
"""

from __future__ import annotations

import re
import uuid

import pytest

from fastproxy.protocol import events as E

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]


def test_p01_welcome_on_accept() -> None:
    cid = str(uuid.uuid4())
    h = H.Harness(connection_id=cid)
    step = h.start()
    assert step.client == [("json", {"type": "Welcome", "request_id": cid})]
    assert h.sent_upstream == []
    assert h.client_close is None and h.upstream_close is None
    assert h.session.phase == "CONNECTING"


def test_p02_welcome_first_nothing_upstream() -> None:
    cid = str(uuid.uuid4())
    h = H.Harness(connection_id=cid)
    h.start()
    h.open_upstream()  # the mock's session.created
    h.advance(500)
    assert h.to_client == [("json", {"type": "Welcome", "request_id": cid})]
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        h.to_client[0][1]["request_id"],
    )
    assert h.sent_upstream == []
    assert h.session.phase == "OPEN"


def test_p04_settings_during_handshake_keepalive_dropped() -> None:
    h = H.Harness()
    h.start()
    h.at(10)
    h.client({"type": "Settings"})
    h.client({"type": "KeepAlive"})
    assert h.sent_upstream == []  # (the harness also refuses any send before the upstream opens)
    h.at(300)
    h.open_upstream()
    assert h.sent_upstream == [{"type": "session.update", "session": H.default_session()}]
    assert h.client_types() == ["Welcome"]
    h.upstream(H.session_updated())
    assert h.client_types() == ["Welcome", "SettingsApplied"]
    h.advance(500)
    assert h.client_types() == ["Welcome", "SettingsApplied"]
    assert h.upstream_types() == ["session.update"]


def test_p05_upstream_refuses_handshake() -> None:
    h = H.Harness(secrets=("sk-test",))
    h.start()
    h.event(E.UpstreamConnectFailed("HTTP 401"))
    assert h.client_types() == ["Welcome", "Error"]
    err = h.to_client[1][1]
    assert set(err) == {"type", "code", "description"}
    assert err["code"] == "upstream_unavailable"
    assert "401" in err["description"] and "sk-test" not in err["description"]
    assert h.client_close == (1011, "upstream_unavailable")
    assert h.sent_upstream == []


def test_p06_upstream_connect_timeout() -> None:
    h = H.Harness()
    h.start()
    h.at(500)
    h.event(E.UpstreamConnectFailed("timeout after 500 ms"))
    errs = h.errors("upstream_unavailable")
    assert len(errs) == 1 and "timeout" in errs[0]["description"]
    assert h.client_types() == ["Welcome", "Error"]
    assert h.client_close is not None and h.client_close[0] == 1011


def test_p07_upstream_closes_before_ready() -> None:
    h = H.Harness()
    h.start()
    h.open_upstream()
    h.client(H.S0)
    assert h.upstream_types() == ["session.update"]
    h.event(E.UpstreamClosed(1011, "boom"))
    assert h.client_types() == ["Welcome", "Error"]
    err = h.to_client[1][1]
    assert err["code"] == "upstream_unavailable"
    assert "1011" in err["description"] and "boom" in err["description"]
    assert h.client_close is not None and h.client_close[0] == 1011
    assert h.count_client("SettingsApplied") == 0


def test_p08_normal_upstream_close_after_ready() -> None:
    h = H.ready_harness()
    h.event(E.UpstreamClosed(1000, ""))
    assert h.to_client == []
    assert h.client_close == (1000, "normal")


def test_p09_upstream_drop_after_ready() -> None:
    h = H.ready_harness()
    h.event(E.UpstreamClosed(1006, ""))
    assert h.client_types() == ["Error"]
    err = h.client_json("Error")[0]
    assert err["code"] == "upstream_closed" and "1006" in err["description"]
    assert h.client_close == (1011, "upstream_closed")


def test_p10_client_closes() -> None:
    h = H.ready_harness()
    h.event(E.ClientClosed(1001, ""))
    assert h.upstream_close is not None and h.upstream_close[0] == 1000
    assert h.sent_upstream == []
    h.advance(1000)
    assert h.sent_upstream == []
    assert h.session.phase == "CLOSED"


def test_p11_client_leaves_during_handshake() -> None:
    h = H.Harness()
    h.start()
    h.at(50)
    h.event(E.ClientClosed(1000, ""))
    h.at(500)
    if h.upstream_close is None:
        # the handshake was not abandoned at once: the Session closes the leg when it opens
        h.open_upstream(send_created=False)
        assert h.upstream_close is not None
    assert h.upstream_close[0] == 1000
    assert h.sent_upstream == []
    assert h.client_types() == ["Welcome"]
    # a second client then completes READY-setup
    h2 = H.Harness()
    h2.ready(clear=False)
    assert h2.client_types() == ["Welcome", "SettingsApplied"]


def test_p12_drain() -> None:
    h = H.ready_harness()
    h.at(200)
    h.upstream(
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 10, "item_id": "item_u1"}
    )
    assert h.client_json() == [{"type": "UserStartedSpeaking"}]
    h.at(500)
    h.event(E.DrainDeadline())
    assert h.client_close == (1001, "going_away")
    assert h.upstream_close is not None and h.upstream_close[0] == 1001
    assert h.client_json() == [{"type": "UserStartedSpeaking"}]


def test_p13_frame_type_contract() -> None:
    h = H.ready_harness()
    h.confirm_items = True
    pcm = H.A_bytes(320)
    h.script_responses(
        [
            H.response_created("resp_1"),
            H.audio_delta("resp_1", "item_a1", pcm),
            H.audio_done("resp_1", "item_a1"),
            H.transcript_done("resp_1", "item_a1", "Hi"),
            H.response_done("resp_1"),
        ]
    )
    h.client(H.inject_user("Say hi"))
    assert h.count_up("response.create") == 1
    binaries = h.client_binaries()
    assert binaries == [pcm]
    # every other message is a JSON object with a string type (the harness checks each
    # SendClient); and no JSON ever travels as binary
    for kind, payload in h.to_client:
        if kind == "binary":
            assert not payload.lstrip().startswith(b"{")
    assert h.count_client("AgentAudioDone") == 1


def test_p14_reassembled_messages() -> None:
    h = H.Harness()
    h.start()
    h.open_upstream()
    h.client(H.S0)  # the reassembled S0
    ups = h.up("session.update")
    assert len(ups) == 1 and ups[0]["session"]["instructions"] == "Be brief."
    h.upstream(H.session_updated())
    h.clear()
    audio = H.A_bytes(960)
    h.client_audio(audio)  # the reassembled 500 + 460 bytes
    assert h.upstream_types() == ["input_audio_buffer.append"]
    assert h.appended() == [audio]


def test_p15_oversized_client_message() -> None:
    h = H.ready_harness()
    h.event(E.ClientMessageTooLarge(1048577))
    errs = h.client_json("Error")
    assert len(errs) == 1 and errs[0]["code"] == "message_too_large"
    assert h.client_close == (1009, "message_too_large")
    assert h.upstream_close is not None and h.upstream_close[0] == 1000
    assert h.sent_upstream == []
    # another connection: a message of exactly the limit is appended normally
    h2 = H.ready_harness()
    data = H.A_bytes(1048576)
    h2.client_audio(data)
    assert b"".join(h2.appended()) == data
    assert h2.client_close is None and h2.to_client == []


def test_p16_empty_and_json_looking_frames() -> None:
    h = H.ready_harness()
    h.client_audio(b"")  # zero-length binary: the relay ignores it
    h.client(b"")  # zero-length text: W2, nothing anywhere
    assert h.sent_upstream == [] and h.to_client == []
    data = b'{"type":"Settings" }'
    assert len(data) == 20
    h.client_audio(data)
    assert h.upstream_types() == ["input_audio_buffer.append"]
    assert h.appended() == [data]
    assert h.to_client == []
    assert h.count_up("session.update") == 0


def test_p17_upstream_binary() -> None:
    h = H.ready_harness()
    h.upstream_binary(bytes(100))
    assert h.to_client == [] and h.sent_upstream == []
    assert h.stats.violations["unexpected_upstream_binary"] == 1
    assert h.client_close is None


# ---------------------------------------------------------------------------------------------
# §3.6 teardown rows without a scenario of their own


@pytest.mark.parametrize(
    ("ready", "event", "error", "client_code", "upstream_code"),
    [
        (True, E.ClientSendBufferOverflow(), None, 1008, 1000),
        (True, E.UpstreamSendBufferOverflow(), "upstream_closed", 1011, 1011),
        (True, E.UpstreamMessageTooLarge(20_000_000), "upstream_closed", 1011, 1009),
        (False, E.UpstreamMessageTooLarge(20_000_000), "upstream_unavailable", 1011, 1009),
        (False, E.DrainDeadline(), None, 1001, 1001),
    ],
    ids=[
        "client-send-buffer",
        "upstream-send-buffer",
        "upstream-too-large",
        "upstream-too-large-before-ready",
        "drain-before-ready",
    ],
)
def test_rule_teardown_table(
    ready: bool, event: E.Event, error: str | None, client_code: int, upstream_code: int
) -> None:
    if ready:
        h = H.ready_harness()
    else:
        h = H.Harness()
        h.start()
        h.open_upstream()
        h.client(H.S0)
        h.clear()
    h.event(event)
    assert [e["code"] for e in h.client_json()] == ([error] if error else [])
    assert h.client_close is not None and h.client_close[0] == client_code
    assert h.upstream_close is not None and h.upstream_close[0] == upstream_code
    assert h.session.phase == "CLOSED"
    h.advance(60000)  # every timer of the connection is dead (the harness refuses late sends)
    assert h.sent_upstream == []
