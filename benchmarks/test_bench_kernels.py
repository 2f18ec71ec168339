"""Audio kernel micro-benchmarks: compiled vs pure-Python twin vs the naive way.

Run ``pytest benchmarks/test_bench_kernels.py`` (add ``--benchmark-autosave`` and later
``--benchmark-compare`` to catch regressions). Groups are "<kernel> <frame>", so each table
compares the ways of doing one job on one frame size. Targets (20 ms at 24 kHz): compiled append
framing and delta scan+decode >= 5x faster than json+base64; resampling 16k->24k <= 5 us.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

# PCM sizes of the frames the proxy sees: bytes = ms * rate * 2 / 1000 (PROTOCOL.md §4.4).
FRAMES = {"20ms@16k": 640, "20ms@24k": 960, "100ms@16k": 3200, "100ms@24k": 4800}

# --- append framing ---------------------------------------------------------------------------


@pytest.mark.parametrize("frame", FRAMES)
@pytest.mark.parametrize("way", ["c-framer", "c-encode_appends", "py", "naive-json"])
def test_append(benchmark: Any, impl: Any, pcm: Any, way: str, frame: str) -> None:
    benchmark.group = f"append {frame}"
    data = pcm(FRAMES[frame])
    fn: Callable[[], object]
    if way == "naive-json":

        def fn() -> object:
            return json.dumps(
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(data).decode()}
            )

    elif way == "py":
        enc = impl("py").encode_appends
        fn = lambda: enc(data)  # noqa: E731
    elif way == "c-framer":
        framer = impl("c").AppendFramer()
        fn = lambda: framer.frame(data)  # noqa: E731
    else:
        enc = impl("c").encode_appends
        fn = lambda: enc(data)  # noqa: E731
    benchmark(fn)


# --- delta scan + decode ----------------------------------------------------------------------


class _Delta(msgspec.Struct):
    type: str
    response_id: str
    item_id: str
    delta: str


class _DeltaBytes(msgspec.Struct):
    type: str
    response_id: str
    item_id: str
    delta: bytes  # msgspec base64-decodes bytes fields itself


_MSGSPEC = msgspec.json.Decoder(_Delta)
_MSGSPEC_BYTES = msgspec.json.Decoder(_DeltaBytes)


@pytest.mark.parametrize("frame", FRAMES)
@pytest.mark.parametrize("way", ["c", "py", "naive-json", "naive-msgspec", "msgspec-bytes-field"])
def test_scan(benchmark: Any, impl: Any, pcm: Any, delta_frame: Any, way: str, frame: str) -> None:
    benchmark.group = f"scan+decode {frame}"
    data = pcm(FRAMES[frame])
    line = delta_frame(data)
    fn: Callable[[], object]
    if way == "naive-json":

        def fn() -> object:
            d = json.loads(line)
            return d["response_id"], d["item_id"], base64.b64decode(d["delta"])

    elif way == "naive-msgspec":

        def fn() -> object:
            d = _MSGSPEC.decode(line)
            return d.response_id, d.item_id, base64.b64decode(d.delta)

    elif way == "msgspec-bytes-field":

        def fn() -> object:
            d = _MSGSPEC_BYTES.decode(line)
            return d.response_id, d.item_id, d.delta

    else:
        scan = impl(way).scan_delta
        fn = lambda: scan(line)  # noqa: E731
    assert fn() is not None
    benchmark(fn)


@pytest.mark.parametrize("way", ["c", "py", "naive-json", "naive-msgspec"])
def test_scan_not_audio(benchmark: Any, impl: Any, way: str) -> None:
    """The cost of saying "not audio" for a typical control event (transcript delta)."""
    benchmark.group = "scan not-audio (transcript delta)"
    line = (
        b'{"type":"response.output_audio_transcript.delta","event_id":"event_9u827cams9qE4DRG4g",'
        b'"response_id":"resp_jI83PNJnlhuuCmzLgh1cs","item_id":"item_DZiUSO2Gle7meNfio5VXP",'
        b'"output_index":0,"content_index":0,"delta":"Sure, ","obfuscation":"Xp0"}'
    )
    generic = msgspec.json.Decoder()
    if way == "naive-json":
        fn = lambda: json.loads(line)["type"] == "response.output_audio.delta"  # noqa: E731
    elif way == "naive-msgspec":
        fn = lambda: generic.decode(line)["type"] == "response.output_audio.delta"  # noqa: E731
    else:
        scan = impl(way).scan_delta
        fn = lambda: scan(line)  # noqa: E731
    benchmark(fn)


# --- resampling -------------------------------------------------------------------------------

_PAIRS = [
    (16000, 24000),
    (24000, 16000),
    (8000, 24000),
    (24000, 8000),
    (22050, 24000),
    (24000, 22050),
    (32000, 24000),
    (24000, 32000),
    (44100, 24000),
    (24000, 44100),
    (48000, 24000),
    (24000, 48000),
    (24000, 24000),
]


@pytest.mark.parametrize("pair", _PAIRS, ids=[f"{a // 1000}k-{b // 1000}k" for a, b in _PAIRS])
@pytest.mark.parametrize("way", ["c", "py", "naive-scipy-stateless"])
def test_resample_20ms(
    benchmark: Any, impl: Any, pcm: Any, way: str, pair: tuple[int, int]
) -> None:
    a, b = pair
    benchmark.group = f"resample 20ms {a}->{b}"
    data = pcm(a // 25)  # 20 ms: rate * 0.02 s * 2 bytes
    if way == "naive-scipy-stateless":
        # Not equivalent (no state across frames): only a scale for what numpy/scipy costs.
        np = pytest.importorskip("numpy")
        sig = pytest.importorskip("scipy.signal")
        if a == b or (a, b) not in ((16000, 24000), (24000, 16000)):
            pytest.skip("scipy scale reference only for 16k<->24k")
        from math import gcd

        g = gcd(a, b)

        def fn() -> object:
            x = np.frombuffer(data, "<i2").astype(np.float64)
            y = sig.resample_poly(x, b // g, a // g)
            return np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes()

    else:
        rs = impl(way).Resampler(a, b)
        fn = lambda: rs.process(data)  # noqa: E731
    benchmark(fn)
