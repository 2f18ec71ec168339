"""§13.4 Audio formats and input audio: P-34 … P-44, end to end over real sockets."""

from __future__ import annotations

import asyncio
import math
import random

import numpy as np
from e2e_kit import (
    PCM24,
    S0,
    SUPPORTED_RATES,
    A,
    Z,
    delta,
    now,
    up_appended,
    up_of,
    up_times,
    up_types,
)
from scipy.signal import resample_poly


def with_audio(audio):
    return {**S0, "audio": audio}


def pcm_in(rate):
    return with_audio({"input": {"encoding": "linear16", "sample_rate": rate}})


def pcm_out(rate):
    return with_audio({"output": {"encoding": "linear16", "sample_rate": rate}})


async def appended_total(u, nbytes, timeout=5.0):
    await u.wait_for(lambda u: sum(map(len, up_appended(u))) >= nbytes, timeout)
    return b"".join(up_appended(u))


async def test_p34_format_negotiation(env):
    pcmu, pcma = {"type": "audio/pcmu"}, {"type": "audio/pcma"}
    cases = {
        "a": (
            {
                "input": {"encoding": "linear16", "sample_rate": 16000},
                "output": {"encoding": "linear16", "sample_rate": 8000},
            },
            PCM24,
            8000,
        ),
        "b": (
            {
                "input": {"encoding": "mulaw", "sample_rate": 8000},
                "output": {"encoding": "mulaw", "sample_rate": 8000, "container": "none"},
            },
            pcmu,
            None,
        ),
        "c": ({"input": {"encoding": "alaw"}, "output": {"encoding": "alaw"}}, pcma, None),
        "d": (None, PCM24, 24000),
        "e": ({"output": {"sample_rate": 16000}}, PCM24, 16000),
    }
    async with env() as e:
        for name, (audio, fmt, out_rate) in cases.items():
            c = await e.ready(S0 if audio is None else with_audio(audio))
            (update,) = up_of(c.up, "session.update")
            session_audio = update["session"]["audio"]
            assert session_audio["input"]["format"] == fmt, name
            assert session_audio["output"]["format"] == fmt, name
            if out_rate is not None:  # a 20 ms 24 kHz delta arrives at the client's rate
                c.up.send(delta("resp_x", "item_x", A(960)))
                (binary,) = await c.wait_binaries(1)
                assert len(binary) == 960 * out_rate // 24000, name
            c.close()


async def test_p35_unsupported_formats(env):
    cases = [
        ("input", {"encoding": "opus", "sample_rate": 48000}, "opus"),
        ("input", {"encoding": "linear16", "sample_rate": 11025}, "11025"),
        ("input", {"encoding": "mulaw", "sample_rate": 16000}, "16000"),
        ("output", {"encoding": "mp3"}, "mp3"),
        ("output", {"encoding": "linear16", "sample_rate": 24000, "container": "wav"}, "wav"),
    ]
    async with env() as e:
        for direction, fmt, offending in cases:
            c = await e.connect()
            u = await e.upstream_of(c)
            c.send(with_audio({direction: fmt}))
            await c.wait_closed()
            assert c.types() == ["Welcome", "Error"], fmt
            err = c.json()[1]
            assert err["code"] == "unsupported_audio_format"
            text = err["description"]
            assert direction in text and offending in text, text
            for word in ("linear16", "mulaw", "alaw", *map(str, SUPPORTED_RATES)):
                assert word in text, (word, text)
            assert c.close_code == 1008
            await u.wait_closed()
            assert u.close_code == 1000
            assert up_types(u) == []


async def test_p36_passthrough_append(env):
    async with env() as e:
        c = await e.ready()
        c.send_binary(b"\x00\x00\xff\xff")
        await c.up.wait_for_event("input_audio_buffer.append")
        (event,) = c.up.events_of("input_audio_buffer.append")
        assert event == {"type": "input_audio_buffer.append", "audio": "AAD//w=="}


async def test_p37_resampling_frame_arithmetic(env):
    frames = {16000: 640, 8000: 320, 22050: 882, 32000: 1280, 44100: 1764, 48000: 1920}
    async with env() as e:

        async def one(rate, size):
            c = await e.ready(pcm_in(rate))
            c.send_binary(A(size))
            await c.up.wait_for_event("input_audio_buffer.append")
            await e.quiet(c.up, window=0.3)
            assert [len(b) for b in up_appended(c.up)] == [960], rate

        await asyncio.gather(*(one(rate, size) for rate, size in frames.items()))


async def test_p38_odd_chunk_boundaries(env):
    stream = A(1280)
    async with env() as e:
        c = await e.ready(pcm_in(16000))
        c.send_binary(stream[:641])
        await c.up.wait_for_event("input_audio_buffer.append")
        c.send_binary(stream[641:])
        split = await appended_total(c.up, 1920)
        assert [len(b) for b in up_appended(c.up)] == [960, 960]

        whole = await e.ready(pcm_in(16000))
        whole.send_binary(stream)
        one_message = await appended_total(whole.up, 1920)

        bytewise = await e.ready(pcm_in(16000))
        for i in range(len(stream)):
            bytewise.send_binary(stream[i : i + 1])
        one_byte_messages = await appended_total(bytewise.up, 1920)
        assert split == one_message == one_byte_messages
        for u in (c.up, whole.up, bytewise.up):
            await e.quiet(u, window=0.2)
            assert sum(map(len, up_appended(u))) == 1920


async def test_p39_fractional_ratio(env):
    stream = A(1764)
    async with env() as e:
        c = await e.ready(pcm_in(44100))
        u = c.up
        c.send_binary(stream[:882])
        await u.wait_for_event("input_audio_buffer.append")
        c.send_binary(stream[882:885])
        c.send_binary(stream[885:])
        await u.wait_for_event("input_audio_buffer.append", nth=1)
        await e.quiet(u, window=0.3)
        assert [len(b) for b in up_appended(u)] == [480, 480]


# -- P-40: RS6 quality through the proxy ------------------------------------------------------


def sweep(rate: int, out_rate: int) -> np.ndarray:
    """RS6: linear sweep 20 Hz → f_max, 2.0 s, amplitude 16384, as int16."""
    f_max = min(10000.0, 0.45 * min(rate, out_rate))
    n = int(2.0 * rate)
    t = np.arange(n) / rate
    phase = 2 * np.pi * (20.0 * t + (f_max - 20.0) / (2 * 2.0) * t * t)
    return np.round(16384 * np.sin(phase)).astype("<i2")


def snr_ok(x: np.ndarray, y: bytes, in_rate: int, out_rate: int) -> float:
    g = math.gcd(in_rate, out_rate)
    ref = resample_poly(x.astype(np.float64), out_rate // g, in_rate // g)
    out = np.frombuffer(y, dtype="<i2").astype(np.float64)
    edge = int(0.05 * out_rate)
    n = np.arange(edge, len(ref) - edge)
    best = -math.inf
    for d in range(math.ceil(0.005 * out_rate) + 1):
        if n[-1] + d >= len(out):
            break
        err = out[n + d] - ref[n]
        snr = 10 * math.log10(np.sum(ref[n] ** 2) / max(np.sum(err**2), 1e-12))
        best = max(best, snr)
    return best


def chunks(data: bytes, sizes) -> list[bytes]:
    out, i = [], 0
    for size in sizes:
        if i >= len(data):
            break
        out.append(data[i : i + size])
        i += size
    if i < len(data):
        out.append(data[i:])
    return out


def random_sizes(seed: int):
    rng = random.Random(seed)
    while True:
        yield rng.randint(1, 4001)


def twenty_ms(rate: int):
    while True:
        yield rate * 2 // 50


RATES = (8000, 16000, 22050, 32000, 44100, 48000)


async def test_p40_resampler_quality_input(env):
    async with env() as e:

        async def feed(rate, sizes):
            x = sweep(rate, 24000)
            c = await e.ready(pcm_in(rate))
            for piece in chunks(x.tobytes(), sizes):
                c.send_binary(piece)
            expected = (len(x) * 24000 // rate) * 2
            y = await appended_total(c.up, expected, timeout=20)
            assert len(y) == expected, rate
            c.close()
            return x, y

        for rate in RATES:
            (x, y20), (_, yrand) = await asyncio.gather(
                feed(rate, twenty_ms(rate)), feed(rate, random_sizes(rate))
            )
            assert y20 == yrand, f"{rate} → 24000: output depends on chunking"
            snr = snr_ok(x, y20, rate, 24000)
            assert snr >= 50.0, f"{rate} → 24000: SNR {snr:.1f} dB"


async def test_p40_resampler_quality_output(env):
    async with env() as e:

        async def feed(rate, sizes):
            x = sweep(24000, rate)
            c = await e.ready(pcm_out(rate))
            for piece in chunks(x.tobytes(), sizes):
                c.up.send(delta("resp_sweep", "item_sweep", piece))
            expected = (len(x) * rate // 24000) * 2

            def enough(c):
                total = sum(map(len, c.binaries()))
                return total if total >= expected else None

            await c.wait(enough, timeout=20)
            c.close()
            return x, b"".join(c.binaries())

        for rate in RATES:
            (x, y20), (_, yrand) = await asyncio.gather(
                feed(rate, twenty_ms(24000)), feed(rate, random_sizes(rate + 1))
            )
            assert len(y20) == (len(x) * rate // 24000) * 2
            assert y20 == yrand, f"24000 → {rate}: output depends on chunking"
            snr = snr_ok(x, y20, 24000, rate)
            assert snr >= 50.0, f"24000 → {rate}: SNR {snr:.1f} dB"


async def test_p41_mulaw_passthrough(env):
    mulaw = {"encoding": "mulaw", "sample_rate": 8000}
    async with env() as e:
        c = await e.ready(with_audio({"input": mulaw, "output": mulaw}))
        client_bytes = b"\x7f" * 160
        c.send_binary(client_bytes)
        await c.up.wait_for_event("input_audio_buffer.append")
        mock_bytes = b"\xff\x00" * 80
        c.up.send(delta("resp_1", "item_a1", mock_bytes))
        await c.wait_binaries(1)
        await e.quiet(c, c.up, window=0.3)
        assert up_appended(c.up) == [client_bytes]
        assert c.binaries() == [mock_bytes]


async def test_p42_oversized_chunk_is_split(env):
    size = 16777216
    async with env(max_client_message_bytes=size) as e:
        c = await e.ready()
        data = A(size)
        c.send_binary(data)
        joined = await appended_total(c.up, size, timeout=20)
        assert [len(b) for b in up_appended(c.up)] == [11534336, 5242880]
        assert joined == data
        await e.quiet(c, window=0.2)
        assert not c.closed


async def test_p43_audio_before_ready_is_held(env):
    async with env() as e:
        answered = e.answer_updates(delay_ms=50)
        c = await e.connect()
        u = await e.upstream_of(c)
        c.send(S0)
        c.send_binary(Z(960))
        await u.wait_for_event("input_audio_buffer.append")
        await c.wait_type("SettingsApplied")
        await e.quiet(u, window=0.3)
        (_, answered_at) = answered[0]
        (append_at,) = up_times(u, "input_audio_buffer.append")
        assert append_at >= answered_at
        assert up_types(u) == ["session.update", "input_audio_buffer.append"]
        assert up_appended(u) == [Z(960)]


async def test_p44_vad_modes_only_append(env):
    async with env() as e:
        c = await e.ready()
        t0 = now()
        for i in range(175):
            c.send_binary(A(960, offset=960 * i))
            await asyncio.sleep(max(0.0, t0 + 0.02 * (i + 1) - now()))
        await c.up.wait_for_event("input_audio_buffer.append", nth=174)
        await e.quiet(c.up, window=0.5)
        types = up_types(c.up)
        assert types.count("input_audio_buffer.append") == 175
        assert "input_audio_buffer.commit" not in types
        assert "response.create" not in types
        assert b"".join(up_appended(c.up)) == A(960 * 175)
