"""PROTOCOL.md §13.5 (manual commit), P-45 ... P-50, at the Session level.

Every scenario uses ``turn_detection="manual"`` and READY-setup with PCM 24000 input. Appended
byte counts reach the Session as the relay's ``AudioAppended`` reports; the debounce is the
Session's ``"commit"`` timer on the virtual clock.
"""

from __future__ import annotations

from fastproxy.protocol import events as E

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]


def _manual(settings: dict | None = None) -> H.Harness:
    return H.Harness(turn_detection="manual").ready(settings)


def _turn_events(h: H.Harness) -> list[tuple[float, str]]:
    return [
        (t, m["type"])
        for m, t in zip(h.sent_upstream, h.upstream_times, strict=True)
        if m["type"] in ("input_audio_buffer.commit", "response.create")
    ]


def test_p45_nothing_below_100ms() -> None:
    h = _manual()
    h.client_audio(H.A_bytes(500))
    h.at(600)
    assert _turn_events(h) == []
    h.client_audio(H.A_bytes(4300, 500))
    h.at(999.9)
    assert _turn_events(h) == []
    h.at(1000)
    assert _turn_events(h) == [(1000, "input_audio_buffer.commit"), (1000, "response.create")]
    h.at(3000)
    assert h.count_up("input_audio_buffer.commit") == 1


def test_p46_commit_after_a_400ms_gap() -> None:
    h = _manual()
    h.client_audio(H.A_bytes(40000))
    h.at(399.9)
    assert _turn_events(h) == []
    h.at(400)
    control = h.control_upstream()
    assert control == [H.COMMIT, H.RESPONSE_CREATE]
    # "immediately followed": adjacent in the upstream stream
    i = h.upstream_types().index("input_audio_buffer.commit")
    assert h.sent_upstream[i + 1] == H.RESPONSE_CREATE
    h.at(3000)
    assert _turn_events(h) == [(400, "input_audio_buffer.commit"), (400, "response.create")]


def test_p47_debounce_restarts() -> None:
    h = _manual()
    h.client_audio(H.A_bytes(4800))
    h.at(250)
    h.client_audio(H.A_bytes(4800, 4800))
    h.at(649.9)
    assert _turn_events(h) == []
    h.at(3000)
    assert _turn_events(h) == [(650, "input_audio_buffer.commit"), (650, "response.create")]


def test_p48_gap_during_a_response() -> None:
    h = _manual()
    h.script_responses(
        [H.response_created("resp_1"), (600, H.response_done("resp_1"))],
        [H.response_created("resp_2"), (600, H.response_done("resp_2"))],
    )
    h.client_audio(H.A_bytes(40000))
    h.at(500)
    assert _turn_events(h) == [(400, "input_audio_buffer.commit"), (400, "response.create")]
    h.client_audio(H.A_bytes(4800, 40000))
    h.at(999.9)
    assert len(_turn_events(h)) == 2  # nothing at about t=900
    h.at(1000)  # resp_1's response.done
    assert _turn_events(h) == [
        (400, "input_audio_buffer.commit"),
        (400, "response.create"),
        (1000, "input_audio_buffer.commit"),
        (1000, "response.create"),
    ]
    # the second commit follows resp_1's response.done
    done_at = h.trace_index(
        lambda e: (
            e[1] == "event" and isinstance(e[2], E.UpstreamText) and b'"response.done"' in e[2].data
        )
    )
    second = [
        i
        for i, e in enumerate(h.trace)
        if e[1] == "upstream" and e[2]["type"] == "input_audio_buffer.commit"
    ][1]
    assert second > done_at
    i = h.upstream_types().index(
        "input_audio_buffer.commit", h.upstream_types().index("response.create") + 1
    )
    assert h.sent_upstream[i + 1] == H.RESPONSE_CREATE


def test_p49_mulaw_threshold() -> None:
    h = _manual({**H.S0, "audio": {"input": {"encoding": "mulaw", "sample_rate": 8000}}})
    h.client_audio(bytes([0x7F]) * 799)
    h.at(600)
    assert _turn_events(h) == []
    h.client_audio(bytes([0x7F]))
    h.at(999.9)
    assert _turn_events(h) == []
    h.at(1000)
    assert _turn_events(h) == [(1000, "input_audio_buffer.commit"), (1000, "response.create")]


def test_p50_client_close_with_pending_audio() -> None:
    h = _manual()
    h.client_audio(H.A_bytes(40000))
    h.at(100)
    h.event(E.ClientClosed(1000, ""))
    h.at(2000)
    assert _turn_events(h) == []
    assert h.upstream_close is not None and h.upstream_close[0] == 1000
