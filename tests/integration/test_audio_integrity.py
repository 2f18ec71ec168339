"""Audio integrity through the proxy: 60 s of audio per direction, byte for byte.

Client → upstream: 3000 generated 20 ms frames (non-silent, every frame distinct) are sent as fast
as flow control allows; the decoded ``input_audio_buffer.append`` payloads must equal the sent
bytes in order (24 kHz passthrough, one append per frame), or the offline output of
``fastproxy.audio.Resampler(16000, 24000)`` fed the same stream (16 kHz client).

Upstream → client: the mock sends 3000 ``response.output_audio.delta`` events of one
response/item; the client must receive exactly those bytes (24 kHz), or the offline output of
``Resampler(24000, 16000)`` (16 kHz client), one binary message per delta.

Each test runs under uvloop and the default asyncio loop.
"""

from __future__ import annotations

import asyncio
import functools
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))

from e2e_kit import LOOP_KINDS, S0, Env, created, delta, run, up_appended

from fastproxy.audio import Resampler

FRAMES = 3000
FRAME_MS = 20


def frame(index: int, rate: int) -> bytes:
    """20 ms of non-silent PCM16 at ``rate``; the frame index is baked into every sample, so no
    two frames are equal and a reordering or a loss cannot go unnoticed."""
    n = rate * FRAME_MS // 1000
    base = 1000 + (index * 7919) % 20000
    samples = [((base + 37 * k) % 30000 + 500) * (1 if (k + index) % 2 else -1) for k in range(n)]
    return struct.pack(f"<{n}h", *samples)


@functools.lru_cache(maxsize=4)
def stream(rate: int) -> tuple[bytes, ...]:
    frames = tuple(frame(i, rate) for i in range(FRAMES))
    assert len(set(frames)) == FRAMES and all(any(f) for f in frames)
    return frames


@functools.lru_cache(maxsize=4)
def offline(in_rate: int, out_rate: int) -> bytes:
    resampler = Resampler(in_rate, out_rate)
    return b"".join(resampler.process(f) for f in stream(in_rate))


def settings(direction: str, rate: int) -> dict:
    return {**S0, "audio": {direction: {"encoding": "linear16", "sample_rate": rate}}}


async def client_to_upstream(loop_kind: str, rate: int) -> None:
    frames = stream(rate)
    expected = b"".join(frames) if rate == 24000 else offline(rate, 24000)
    async with Env(loop_kind, mock={"max_recorded": 2 * FRAMES}) as e:
        c = await e.ready(settings("input", rate))
        for f in frames:
            c.send_binary(f)
            await c.drain()
        await c.up.wait_for(
            lambda u: (
                u.appends_received >= FRAMES and sum(map(len, up_appended(u))) >= len(expected)
            ),
            timeout=30,
        )
        appended = up_appended(c.up)
        if rate == 24000:
            assert len(appended) == FRAMES
            assert appended == list(frames)  # one append per frame, in order
        got = b"".join(appended)
        assert len(got) == len(expected)
        assert got == expected
        await asyncio.sleep(0.1)
        assert sum(map(len, up_appended(c.up))) == len(expected)


async def upstream_to_client(loop_kind: str, rate: int) -> None:
    frames = stream(24000)
    expected = b"".join(frames) if rate == 24000 else offline(24000, rate)
    async with Env(loop_kind) as e:
        c = await e.ready(settings("output", rate))
        u = c.up
        u.send(created("resp_1"))
        mark = c.mark()
        raw = u.transport.underlying_transport
        for i, f in enumerate(frames):
            u.send(delta("resp_1", "item_a1", f))
            if i % 50 == 0:
                while raw.get_write_buffer_size() > 1 << 20:  # the mock's own flow control
                    await asyncio.sleep(0.001)
                await asyncio.sleep(0)

        def complete(c):
            return sum(map(len, c.binaries(mark))) >= len(expected)

        await c.wait(complete, timeout=30)
        binaries = c.binaries(mark)
        assert len(binaries) == FRAMES  # one binary message per delta (O3)
        if rate == 24000:
            assert binaries == list(frames)
        assert b"".join(binaries) == expected
        assert c.types(mark)[0] == "AgentStartedSpeaking"
        assert c.types(mark).count("AgentStartedSpeaking") == 1


@pytest.mark.parametrize("loop_kind", LOOP_KINDS)
@pytest.mark.parametrize("rate", [24000, 16000])
def test_client_to_upstream_audio_integrity(loop_kind: str, rate: int) -> None:
    run(client_to_upstream(loop_kind, rate), loop_kind)


@pytest.mark.parametrize("loop_kind", LOOP_KINDS)
@pytest.mark.parametrize("rate", [24000, 16000])
def test_upstream_to_client_audio_integrity(loop_kind: str, rate: int) -> None:
    run(upstream_to_client(loop_kind, rate), loop_kind)
