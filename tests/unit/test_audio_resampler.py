"""Resampler (PROTOCOL.md §9.2 RS2-RS6, P-37..P-40) on the selected implementation.

numpy/scipy appear only here, as independent references: the kernel itself is integer-only.
"""

from __future__ import annotations

import math
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from fastproxy import audio
from fastproxy.audio import _filters

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parity"))
from audio_vectors import CLIENT_RATES, FRAME_20MS, PAIRS, UNSUPPORTED_PAIRS


def _feed(rs: audio.Resampler, data: bytes, sizes: list[int]) -> bytes:
    out, i = [], 0
    for n in sizes:
        out.append(rs.process(data[i : i + n]))
        i += n
    assert i >= len(data)
    return b"".join(out)


def _random_sizes(total: int, lo: int, hi: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(rng.randint(lo, hi))
    return sizes


def _integer_reference(x: np.ndarray, d: _filters.FilterDesign) -> np.ndarray:
    """The design's integer polyphase filter, vectorised with numpy (unclamped)."""
    L, M, T = d.up, d.down, d.taps
    n = np.arange(len(x) * L // M, dtype=np.int64)
    t = n * M - d.delay * M + d.half_len
    k0, p = t // L, t % L
    pad = T + int(max(0, -k0.min()))
    xp = np.concatenate([np.zeros(pad, np.int64), x.astype(np.int64)])
    idx = k0[:, None] - T + 1 + np.arange(T)[None, :] + pad
    acc = (np.array(d.phases, np.int64)[p] * xp[idx]).sum(axis=1)
    return (acc + (1 << 13)) >> 14


# --- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), UNSUPPORTED_PAIRS)
def test_unsupported_pairs(a: int, b: int) -> None:
    with pytest.raises(ValueError):
        audio.Resampler(a, b)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_supported_pairs(a: int, b: int) -> None:
    rs = audio.Resampler(a, b)
    assert (rs.in_rate, rs.out_rate) == (a, b)
    assert 0 <= rs.delay <= math.ceil(0.005 * b)  # RS6 bound


# --- passthrough (A3) -----------------------------------------------------------------------


def test_passthrough_carries_odd_byte() -> None:
    rs = audio.Resampler(24000, 24000)
    assert rs.delay == 0
    assert rs.process(b"\x01\x02\x03") == b"\x01\x02"
    assert rs.process(b"") == b""
    assert rs.process(b"\x04") == b"\x03\x04"
    assert rs.process(b"\x05") == b""
    assert rs.process(b"\x06\x07\x08") == b"\x05\x06\x07\x08"
    data = os.urandom(5001)
    rs2 = audio.Resampler(24000, 24000)
    assert b"".join(rs2.process(data[i : i + 7]) for i in range(0, 5001, 7)) == data[:5000]


# --- count rule (RS3, P-37, P-39) -----------------------------------------------------------


@pytest.mark.parametrize("rate", CLIENT_RATES)
def test_p37_one_20ms_frame_gives_960_bytes(rate: int) -> None:
    assert len(audio.Resampler(rate, 24000).process(os.urandom(FRAME_20MS[rate]))) == 960
    # §9.2: the output direction is symmetric
    assert len(audio.Resampler(24000, rate).process(os.urandom(960))) == FRAME_20MS[rate]


def test_p39_fractional_ratio() -> None:
    rs = audio.Resampler(44100, 24000)
    data = os.urandom(1764)
    assert len(rs.process(data[:882])) == 480
    assert len(rs.process(data[882:885])) == 0  # 442 samples in, still 240 out
    assert len(rs.process(data[885:])) == 480


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_count_rule_after_every_call(a: int, b: int) -> None:
    rs = audio.Resampler(a, b)
    rng = random.Random(a * 7 + b)
    n_in = n_out = 0
    for _ in range(60):
        chunk = os.urandom(rng.choice([0, 1, 2, 3, rng.randint(0, 700)]))
        n_in += len(chunk)
        n_out += len(rs.process(chunk))
        assert n_out == 2 * ((n_in // 2) * b // a)


# --- chunking invariance (RS2, RS5, P-38) ---------------------------------------------------


def test_p38_odd_chunk_boundaries() -> None:
    data = os.urandom(1280)
    rs = audio.Resampler(16000, 24000)
    first, second = rs.process(data[:641]), rs.process(data[641:])
    assert len(first) == 960 and len(second) == 960
    assert first + second == audio.Resampler(16000, 24000).process(data)
    ones = audio.Resampler(16000, 24000)
    assert b"".join(ones.process(data[i : i + 1]) for i in range(1280)) == first + second


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_rs5_chunking_invariance(a: int, b: int) -> None:
    data = os.urandom(3001)
    whole = audio.Resampler(a, b).process(data)
    assert len(whole) == 2 * (1500 * b // a)
    assert _feed(audio.Resampler(a, b), data, [1] * len(data)) == whole
    for seed in range(3):
        sizes = _random_sizes(len(data), 0, 333, seed)
        assert _feed(audio.Resampler(a, b), data, sizes) == whole


# --- exactness, rounding and clamping (RS4) -------------------------------------------------


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_matches_integer_reference_and_clamps(a: int, b: int) -> None:
    rng = np.random.default_rng(a + b)
    noise = rng.integers(-32768, 32768, 2000, dtype=np.int16)
    # Full-scale square wave: the filter overshoots, so clamping must engage.
    period = max(2, a // 300)
    square = np.where((np.arange(3000) // period) % 2 == 0, 32767, -32768).astype(np.int16)
    d = _filters.design(a, b)
    overshoot = False
    for x in (noise, square):
        ref = _integer_reference(x, d)
        got = np.frombuffer(audio.Resampler(a, b).process(x.astype("<i2").tobytes()), "<i2")
        assert np.array_equal(got, np.clip(ref, -32768, 32767))
        overshoot |= bool((ref > 32767).any() or (ref < -32768).any())
    assert overshoot


def test_output_buffer_headroom_and_reuse() -> None:
    rs = audio.Resampler(16000, 24000)
    for n in (640, 0, 1, 400_000, 641, 2):
        rs.process(os.urandom(n))
        assert rs.headroom >= audio.HEADROOM


def test_silence_stays_silent() -> None:
    for a, b in PAIRS:
        assert audio.Resampler(a, b).process(bytes(4000)) == bytes(2 * (2000 * b // a))


# --- filter design ---------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_design_is_resample_polys_default_filter(a: int, b: int) -> None:
    d = _filters.design(a, b)
    g = math.gcd(a, b)
    assert (d.up, d.down) == (b // g, a // g)
    assert d.half_len == 10 * max(d.up, d.down)
    assert d.delay == math.ceil(d.half_len / d.down)
    h = signal.firwin(2 * d.half_len + 1, 1.0 / max(d.up, d.down), window=("kaiser", 5.0)) * d.up
    assert np.max(np.abs(np.array(_filters.prototype(d.up, d.down)) - h)) < 1e-12
    # Polyphase split: phases[p][taps-1-i] == round(h[p + i*up] * 2**14)
    q = np.zeros(d.up * d.taps, np.int64)
    for p, branch in enumerate(d.phases):
        for i in range(d.taps):
            if p + i * d.up < len(q):
                q[p + i * d.up] = branch[d.taps - 1 - i]
    assert np.max(np.abs(q[: len(h)] / 2**14 - h)) <= 2**-15 + 1e-12
    assert not q[len(h) :].any()


# --- quality (RS6, P-40) --------------------------------------------------------------------


def _sweep(rate: int, out_rate: int) -> np.ndarray:
    f_max = min(10000.0, 0.45 * min(rate, out_rate))
    t = np.arange(2 * rate) / rate
    x = 16384 * signal.chirp(t, f0=20.0, t1=2.0, f1=f_max, method="linear", phi=-90)
    return np.round(x).astype(np.int16)


def _snr(y: np.ndarray, ref: np.ndarray, d: int, out_rate: int) -> float:
    n = np.arange(math.ceil(0.05 * out_rate), math.floor(len(ref) - 0.05 * out_rate))
    err = y[n + d] - ref[n]
    return float(10 * np.log10(np.sum(ref[n] ** 2) / np.sum(err**2)))


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_rs6_quality_against_resample_poly(a: int, b: int) -> None:
    x = _sweep(a, b)
    data = x.astype("<i2").tobytes()
    by_frame = _feed(audio.Resampler(a, b), data, [FRAME_20MS[a]] * (len(data) // FRAME_20MS[a]))
    by_random = _feed(audio.Resampler(a, b), data, _random_sizes(len(data), 1, 4001, a + b))
    assert by_frame == by_random
    y = np.frombuffer(by_frame, "<i2").astype(np.float64)
    g = math.gcd(a, b)
    ref = signal.resample_poly(x.astype(np.float64), b // g, a // g)
    assert len(y) == len(x) * b // a
    bound = math.ceil(0.005 * b)
    snrs = {d: _snr(y, ref, d, b) for d in range(bound + 1)}
    best = max(snrs, key=snrs.__getitem__)
    delay = audio.Resampler(a, b).delay
    assert best == delay
    assert snrs[delay] >= 50.0, snrs[delay]
