"""Compiled kernels vs the pure-Python twin: same vectors, byte-identical results.

Every vector runs against both ``fastproxy.audio._audio_c`` and ``fastproxy.audio._audio_py``;
hypothesis then looks for any input on which they differ (and, for the scanner, any answer that
disagrees with an independent json-module oracle). With FASTPROXY_NO_EXTENSIONS=1 the compiled
side is skipped (the CI leg without extensions); otherwise a missing build is an error, never a
silent fallback.
"""

from __future__ import annotations

import base64
import json
import os
import random
import string
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from audio_vectors import (
    APPEND_VECTORS,
    AUDIO_TYPE,
    FRAME_20MS,
    PAIRS,
    SCAN_ACCEPT,
    SCAN_REJECT,
    TRACE_LINE,
    UNSUPPORTED_PAIRS,
    append_event,
    delta_frame,
    oracle_scan,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastproxy.audio import _audio_py

NO_EXT = os.environ.get("FASTPROXY_NO_EXTENSIONS") == "1"
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _compiled() -> ModuleType:
    if NO_EXT:
        pytest.skip("FASTPROXY_NO_EXTENSIONS=1: the compiled side is not under test")
    from fastproxy.audio import _audio_c  # an ImportError here is a failure, not a skip

    return _audio_c


@pytest.fixture(params=["c", "py"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    return _compiled() if request.param == "c" else _audio_py


@pytest.fixture
def c_mod() -> ModuleType:
    return _compiled()


# --- the selector -----------------------------------------------------------------------------


def test_compiled_module_is_active() -> None:
    """Fails on a silent fallback: without FASTPROXY_NO_EXTENSIONS=1 the compiled kernels run."""
    import fastproxy.audio as selected

    if NO_EXT:
        assert selected.IMPLEMENTATION == "py"
        assert selected.scan_delta is _audio_py.scan_delta
    else:
        assert selected.IMPLEMENTATION == "c", "compiled audio kernels are not in use"
        assert selected.scan_delta is _compiled().scan_delta


_BLOCK_C = "import sys; sys.modules['fastproxy.audio._audio_c'] = None; import fastproxy.audio as a"


def _run_selector(code: str, no_ext: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FASTPROXY_NO_EXTENSIONS"}
    if no_ext:
        env["FASTPROXY_NO_EXTENSIONS"] = "1"
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


def test_missing_build_fails_loudly() -> None:
    proc = _run_selector(_BLOCK_C, no_ext=False)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr
    assert "pip install -e ." in proc.stderr and "FASTPROXY_NO_EXTENSIONS=1" in proc.stderr


def test_opt_in_fallback_without_build() -> None:
    proc = _run_selector(_BLOCK_C + "; print(a.IMPLEMENTATION)", no_ext=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "py"


def test_same_public_surface(c_mod: ModuleType) -> None:
    names = [
        "HEADROOM",
        "MAX_APPEND_BYTES",
        "AppendFramer",
        "DeltaScanner",
        "Resampler",
        "encode_appends",
        "scan_delta",
    ]
    for name in names:
        assert hasattr(c_mod, name) and hasattr(_audio_py, name), name
    assert (c_mod.HEADROOM, c_mod.MAX_APPEND_BYTES) == (
        _audio_py.HEADROOM,
        _audio_py.MAX_APPEND_BYTES,
    )
    assert (c_mod.IMPLEMENTATION, _audio_py.IMPLEMENTATION) == ("c", "py")
    members = {
        "AppendFramer": ["frame", "headroom"],
        "DeltaScanner": ["scan_frame", "headroom"],
        "Resampler": ["process", "in_rate", "out_rate", "delay", "headroom"],
    }
    for cls, attrs in members.items():
        for attr in attrs:
            assert hasattr(getattr(c_mod, cls), attr), (cls, attr)
            assert hasattr(getattr(_audio_py, cls), attr), (cls, attr)


# --- shared vectors on each implementation ----------------------------------------------------


@pytest.mark.parametrize(("pcm", "b64"), APPEND_VECTORS)
def test_append_vectors(impl: ModuleType, pcm: bytes, b64: bytes) -> None:
    event = b'{"type":"input_audio_buffer.append","audio":"' + b64 + b'"}'
    assert impl.encode_appends(pcm) == [event]
    assert impl.AppendFramer().frame(pcm) == event
    assert impl.encode_appends(b"") == []


def test_append_split(impl: ModuleType) -> None:
    pcm = os.urandom(10_000)
    assert impl.encode_appends(pcm, max_bytes=3001) == [
        append_event(pcm[i : i + 3001]) for i in range(0, 10_000, 3001)
    ]


@pytest.mark.parametrize(("name", "frame", "expected"), SCAN_ACCEPT)
def test_scan_accept_vectors(
    impl: ModuleType, name: str, frame: bytes, expected: tuple[str, str, bytes]
) -> None:
    assert impl.scan_delta(frame) == expected
    assert impl.DeltaScanner().scan_frame(frame) == expected


@pytest.mark.parametrize(("name", "frame"), SCAN_REJECT)
def test_scan_reject_vectors(impl: ModuleType, name: str, frame: bytes) -> None:
    assert impl.scan_delta(frame) is None


@pytest.mark.parametrize(("a", "b"), [*PAIRS, (24000, 24000)])
def test_resampler_frame_arithmetic(impl: ModuleType, a: int, b: int) -> None:
    """P-37 and its mirror: one 20 ms frame in gives exactly one 20 ms frame out."""
    assert len(impl.Resampler(a, b).process(os.urandom(FRAME_20MS[a]))) == FRAME_20MS[b]


@pytest.mark.parametrize(("a", "b"), UNSUPPORTED_PAIRS)
def test_resampler_unsupported(impl: ModuleType, a: int, b: int) -> None:
    with pytest.raises(ValueError):
        impl.Resampler(a, b)


def test_resampler_p39(impl: ModuleType) -> None:
    rs = impl.Resampler(44100, 24000)
    assert [len(rs.process(os.urandom(n))) for n in (882, 3, 879)] == [480, 0, 480]


# --- deterministic differential corpora -------------------------------------------------------


def test_scan_mutations_agree(c_mod: ModuleType) -> None:
    """Every one-byte deletion and substitution of the vector frames: same answer, never wrong."""
    frames = [f for _, f, _ in SCAN_ACCEPT if len(f) < 400] + [delta_frame(b"\x01\x02\x03\x04")]
    for frame in frames:
        for i in range(len(frame)):
            for v in [frame[:i] + frame[i + 1 :], frame[:i]] + [
                frame[:i] + bytes([b]) + frame[i + 1 :] for b in b'"\\{}[],:0A=/ \x00\xff'
            ]:
                got = c_mod.scan_delta(v)
                assert got == _audio_py.scan_delta(v), v
                assert got is None or got == oracle_scan(v), v


def test_scan_trace_line_truncations_agree(c_mod: ModuleType) -> None:
    for cut in range(len(TRACE_LINE) + 1):
        assert c_mod.scan_delta(TRACE_LINE[:cut]) == _audio_py.scan_delta(TRACE_LINE[:cut])


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_resampler_agrees_on_noise_and_full_scale(c_mod: ModuleType, a: int, b: int) -> None:
    rng = random.Random(a ^ b)
    noise = os.urandom(a // 2)  # 0.25 s
    square = b"".join((b"\xff\x7f" if (i // 37) % 2 else b"\x00\x80") for i in range(a // 8))
    for data in (noise, square):
        cuts = sorted(rng.sample(range(len(data)), 40))
        chunks = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        rc, rp = c_mod.Resampler(a, b), _audio_py.Resampler(a, b)
        out_c = [rc.process(ch) for ch in chunks]
        out_p = [rp.process(ch) for ch in chunks]
        assert out_c == out_p
        assert b"".join(out_c) == c_mod.Resampler(a, b).process(data)


# --- hypothesis -------------------------------------------------------------------------------


@PROPERTY
@given(pcm=st.binary(max_size=5000), max_bytes=st.integers(1, 6000))
def test_prop_append(pcm: bytes, max_bytes: int) -> None:
    c_mod = _compiled()
    events = c_mod.encode_appends(pcm, max_bytes=max_bytes)
    assert events == _audio_py.encode_appends(pcm, max_bytes=max_bytes)
    assert b"".join(base64.b64decode(json.loads(e)["audio"]) for e in events) == pcm
    assert c_mod.AppendFramer().frame(pcm) == _audio_py.AppendFramer().frame(pcm)


@PROPERTY
@given(data=st.binary(max_size=400))
def test_prop_scan_arbitrary_bytes(data: bytes) -> None:
    c_mod = _compiled()
    assert c_mod.scan_delta(data) == _audio_py.scan_delta(data)


@PROPERTY
@given(
    head=st.sampled_from([b"", b"{", b'{"type":"response.output_audio.delta",', TRACE_LINE[:150]]),
    data=st.binary(max_size=200),
)
def test_prop_scan_arbitrary_tails(head: bytes, data: bytes) -> None:
    c_mod = _compiled()
    assert c_mod.scan_delta(head + data) == _audio_py.scan_delta(head + data)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
_WS = st.sampled_from(["", "", "", "", " ", "\n", "\t", "\r\n  "])
_PLAIN_ID = st.text(alphabet=string.ascii_letters + string.digits + "_-.:/ ", max_size=10)
_ID = st.one_of(_PLAIN_ID, _PLAIN_ID, _PLAIN_ID, st.text(max_size=4))
_KEYS = st.sampled_from(
    [
        "event_id",
        "output_index",
        "content_index",
        "obfuscation",
        "x",
        "",
        "type",
        "delta",
        "response_id",
        "item_id",
        "d\u00e9lta",
        "t\x7fype",
    ]
) | st.text(max_size=4)


def _bad_b64(b64: str, how: str) -> str:
    if how == "drop_last" and b64:
        return b64[:-1]
    if how == "add_eq":
        return b64 + "="
    if how == "space":
        return b64[: len(b64) // 2] + " " + b64[len(b64) // 2 :]
    if how == "badchar" and b64:
        return "*" + b64[1:]
    if how == "urlsafe":
        return b64.replace("+", "-").replace("/", "_")
    if how == "noncanonical" and b64.endswith("=="):
        return b64[:-3] + "B=="
    if how == "noncanonical" and b64.endswith("="):
        return b64[:-2] + "B="
    return b64


@st.composite
def _frames(draw: Any) -> bytes:
    pcm = draw(st.binary(max_size=48))
    delta = _bad_b64(
        base64.b64encode(pcm).decode(),
        draw(
            st.sampled_from(
                ["ok"] * 14 + ["drop_last", "add_eq", "space", "badchar", "urlsafe", "noncanonical"]
            )
        ),
    )
    wanted: list[tuple[str, str]] = [
        (
            "type",
            json.dumps(
                draw(
                    st.sampled_from(
                        [AUDIO_TYPE] * 6
                        + ["response.output_audio.done", "response.output_audio_delta"]
                    )
                )
            ),
        ),
        ("response_id", json.dumps(draw(_ID))),
        ("item_id", json.dumps(draw(_ID))),
        ("delta", json.dumps(delta) if draw(st.integers(0, 9)) else json.dumps(draw(_JSON))),
    ]
    members = [m for m in wanted if draw(st.integers(0, 19))]
    members += [(k, json.dumps(v)) for k, v in draw(st.lists(st.tuples(_KEYS, _JSON), max_size=3))]
    members = draw(st.permutations(members))
    parts = [
        draw(_WS)
        + json.dumps(k, ensure_ascii=draw(st.booleans()))
        + draw(_WS)
        + ":"
        + draw(_WS)
        + v
        + draw(_WS)
        for k, v in members
    ]
    frame = (draw(_WS) + "{" + draw(_WS) + ",".join(parts) + "}" + draw(_WS)).encode()
    how = draw(st.sampled_from(["none"] * 6 + ["cut", "delete", "insert", "replace"]))
    if how != "none" and frame:
        i = draw(st.integers(0, len(frame) - 1))
        byte = bytes([draw(st.integers(0, 255))])
        frame = {
            "cut": frame[:i],
            "delete": frame[:i] + frame[i + 1 :],
            "insert": frame[:i] + byte + frame[i:],
            "replace": frame[:i] + byte + frame[i + 1 :],
        }[how]
    return frame


@PROPERTY
@given(frame=_frames())
def test_prop_scan_structured(frame: bytes) -> None:
    expected = oracle_scan(frame)
    got_py = _audio_py.scan_delta(frame)
    # Never wrong: an accepted frame is exactly what a strict JSON parser reads.
    assert got_py is None or got_py == expected
    # Never needlessly slow: a frame without escapes or DEL is accepted iff it is audio.
    if b"\\" not in frame and b"\x7f" not in frame:
        assert got_py == expected
    if not NO_EXT:
        assert _compiled().scan_delta(frame) == got_py


@PROPERTY
@given(
    pair=st.sampled_from([*PAIRS, (24000, 24000)]),
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(0, 3000), max_size=25),
)
def test_prop_resampler_chunking(pair: tuple[int, int], data: bytes, cuts: list[int]) -> None:
    c_mod = _compiled()
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[i:j] for i, j in zip([0, *points], [*points, len(data)], strict=True)]
    rc, rp = c_mod.Resampler(*pair), _audio_py.Resampler(*pair)
    out_c = [rc.process(ch) for ch in chunks]
    assert out_c == [rp.process(ch) for ch in chunks]
    assert b"".join(out_c) == c_mod.Resampler(*pair).process(data)


@pytest.mark.parametrize("bad", [memoryview(b"abcdefgh")[::2], "text", 123])
def test_same_errors_for_non_buffers(impl: ModuleType, bad: Any) -> None:
    expected = BufferError if isinstance(bad, memoryview) else TypeError
    calls = [
        lambda: impl.encode_appends(bad),
        lambda: impl.AppendFramer().frame(bad),
        lambda: impl.scan_delta(bad),
        lambda: impl.Resampler(16000, 24000).process(bad),
        lambda: impl.Resampler(24000, 24000).process(bad),
    ]
    for call in calls:
        with pytest.raises(expected):
            call()
