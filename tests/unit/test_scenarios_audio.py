"""PROTOCOL.md §13.4 (audio formats and input audio), P-34 ... P-44, at the Session level.

Audio moves through the harness's ``FakeRelay`` exactly as through the compiled relay: the
Session only chooses the formats (``ConfigureRelay``), opens the gate at READY and replays held
audio with ``SendAudioUpstream``; conversion and append framing are ``fastproxy.audio``'s.

Not Session-level: P-40 (resampler quality against ``resample_poly``) is a property of
``fastproxy.audio`` alone, covered by tests/parity.
"""

from __future__ import annotations

from typing import Any

import pytest

from fastproxy.protocol.actions import AudioFormat

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]


def _with_audio(audio: dict[str, Any] | None, **opts: Any) -> H.Harness:
    s = dict(H.S0)
    if audio is not None:
        s["audio"] = audio
    return H.Harness(**opts).ready(s, clear=False)


PCMU = {"type": "audio/pcmu"}
PCMA = {"type": "audio/pcma"}


@pytest.mark.parametrize(
    ("audio", "fin", "fout", "relay_in", "relay_out"),
    [
        (
            {
                "input": {"encoding": "linear16", "sample_rate": 16000},
                "output": {"encoding": "linear16", "sample_rate": 8000},
            },
            H.PCM24,
            H.PCM24,
            AudioFormat("linear16", 16000),
            AudioFormat("linear16", 8000),
        ),
        (
            {
                "input": {"encoding": "mulaw", "sample_rate": 8000},
                "output": {"encoding": "mulaw", "sample_rate": 8000, "container": "none"},
            },
            PCMU,
            PCMU,
            AudioFormat("mulaw", 8000),
            AudioFormat("mulaw", 8000),
        ),
        (
            {"input": {"encoding": "alaw"}, "output": {"encoding": "alaw"}},
            PCMA,
            PCMA,
            AudioFormat("alaw", 8000),
            AudioFormat("alaw", 8000),
        ),
        (None, H.PCM24, H.PCM24, AudioFormat("linear16", 24000), AudioFormat("linear16", 24000)),
        (
            {"output": {"sample_rate": 16000}},
            H.PCM24,
            H.PCM24,
            AudioFormat("linear16", 24000),
            AudioFormat("linear16", 16000),
        ),
    ],
    ids=["a", "b", "c", "d", "e"],
)
def test_p34_format_negotiation(
    audio: Any, fin: Any, fout: Any, relay_in: AudioFormat, relay_out: AudioFormat
) -> None:
    h = _with_audio(audio)
    (upd,) = [m for m in h.all_upstream if m["type"] == "session.update"]
    assert upd["session"]["audio"]["input"]["format"] == fin
    assert upd["session"]["audio"]["output"]["format"] == fout
    assert h.warnings() == []
    # the relay converts to/from the client's format (e: output resampled to 16000)
    assert h.relay.input_format == relay_in
    assert h.relay.output_format == relay_out


@pytest.mark.parametrize(
    ("audio", "direction", "offending"),
    [
        ({"input": {"encoding": "opus", "sample_rate": 48000}}, "input", ["opus"]),
        ({"input": {"encoding": "linear16", "sample_rate": 11025}}, "input", ["11025"]),
        ({"input": {"encoding": "mulaw", "sample_rate": 16000}}, "input", ["16000"]),
        ({"output": {"encoding": "mp3"}}, "output", ["mp3"]),
        (
            {"output": {"encoding": "linear16", "sample_rate": 24000, "container": "wav"}},
            "output",
            ["wav"],
        ),
    ],
)
def test_p35_unsupported_formats(
    audio: dict[str, Any], direction: str, offending: list[str]
) -> None:
    h = H.Harness()
    h.start()
    h.open_upstream()
    h.client({**H.S0, "audio": audio})
    errs = h.client_json("Error")
    assert h.client_types() == ["Welcome", "Error"]
    assert len(errs) == 1 and errs[0]["code"] == "unsupported_audio_format"
    d = errs[0]["description"]
    assert direction in d.lower()
    for v in offending:
        assert v in d, (v, d)
    for supported in (
        "linear16",
        "mulaw",
        "alaw",
        "8000",
        "16000",
        "22050",
        "24000",
        "32000",
        "44100",
        "48000",
    ):
        assert supported in d, (supported, d)
    assert h.client_close is not None and h.client_close[0] == 1008
    assert h.sent_upstream == []
    assert h.upstream_close is not None and h.upstream_close[0] == 1000


def test_p36_passthrough_append() -> None:
    h = H.ready_harness()
    h.client_audio(bytes([0x00, 0x00, 0xFF, 0xFF]))
    assert h.sent_upstream == [{"type": "input_audio_buffer.append", "audio": "AAD//w=="}]
    assert h.upstream_ids == [None]


@pytest.mark.parametrize(
    ("rate", "frame"),
    [(16000, 640), (8000, 320), (22050, 882), (32000, 1280), (44100, 1764), (48000, 1920)],
)
def test_p37_resampling_frame_arithmetic(rate: int, frame: int) -> None:
    h = _with_audio({"input": {"encoding": "linear16", "sample_rate": rate}})
    h.clear()
    h.client_audio(H.A_bytes(frame))
    out = h.appended()
    assert len(out) == 1 and len(out[0]) == 960
    assert h.upstream_types() == ["input_audio_buffer.append"]


def _appended_16k(chunks: list[bytes]) -> bytes:
    h = _with_audio({"input": {"encoding": "linear16", "sample_rate": 16000}})
    h.clear()
    for c in chunks:
        h.client_audio(c)
    return b"".join(h.appended())


def test_p38_odd_chunk_boundaries() -> None:
    stream = H.A_bytes(1280)
    h = _with_audio({"input": {"encoding": "linear16", "sample_rate": 16000}})
    h.clear()
    h.client_audio(stream[:641])
    h.client_audio(stream[641:])
    parts = h.appended()
    assert [len(p) for p in parts] == [960, 960]
    whole = _appended_16k([stream])
    bytewise = _appended_16k([stream[k : k + 1] for k in range(len(stream))])
    assert b"".join(parts) == whole == bytewise


def test_p39_fractional_ratio() -> None:
    h = _with_audio({"input": {"encoding": "linear16", "sample_rate": 44100}})
    h.clear()
    stream = H.A_bytes(1764)
    h.client_audio(stream[:882])
    assert [len(p) for p in h.appended()] == [480]
    h.client_audio(stream[882:885])
    assert [len(p) for p in h.appended()] == [480]
    h.client_audio(stream[885:])
    assert [len(p) for p in h.appended()] == [480, 480]


def test_p41_mulaw_passthrough() -> None:
    h = _with_audio(
        {
            "input": {"encoding": "mulaw", "sample_rate": 8000},
            "output": {"encoding": "mulaw", "sample_rate": 8000},
        }
    )
    h.clear()
    mic = bytes([0x7F]) * 160
    h.client_audio(mic)
    assert h.appended() == [mic]
    agent = bytes([0xFF, 0x00]) * 80
    h.upstream(H.response_created("resp_1"))
    h.upstream(H.audio_delta("resp_1", "item_a1", agent))
    assert h.client_binaries() == [agent]


def test_p42_oversized_chunk_is_split() -> None:
    h = H.ready_harness()
    data = H.A_bytes(65536) * 256
    assert len(data) == 16777216
    h.client_audio(data)
    parts = h.appended()
    assert [len(p) for p in parts] == [11534336, 5242880]
    assert b"".join(parts) == data
    assert h.client_close is None and h.upstream_close is None


def test_p43_audio_before_ready_is_held() -> None:
    h = H.Harness()
    h.start()
    h.open_upstream()
    h.client(H.S0)
    h.client_audio(H.Z(960))
    assert h.upstream_types() == ["session.update"]
    h.at(50)
    h.upstream(H.session_updated())
    assert h.upstream_types() == ["session.update", "input_audio_buffer.append"]
    assert h.appended() == [H.Z(960)]


def test_p44_vad_modes_only_append() -> None:
    h = H.ready_harness()
    for k in range(175):
        h.at(20 * k)
        h.client_audio(H.A_bytes(960, 960 * k))
    h.advance(2000)
    assert h.count_up("input_audio_buffer.append") == 175
    assert h.upstream_types() == ["input_audio_buffer.append"] * 175
    assert h.to_client == []
