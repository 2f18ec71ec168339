"""Backpressure: a client that stops reading while the upstream streams audio to it.

Client A completes READY-setup, then pauses reading its socket. The mock upstream tries to push
more than 200 MiB of agent audio to A's session (as fast as its own flow control allows: it never
buffers more than 1 MiB itself, since it lives in this process too). PROTOCOL.md §3.4 allows two
bounded outcomes: the proxy throttles the upstream leg (it stops reading it, so the mock stalls)
or it closes the client with 1008 once A's send buffer passes ``send_buffer_max_bytes``. The test
asserts which one happens, that the process's RSS grows by less than 64 MiB meanwhile, and that a
second session B keeps round-tripping normally (its audio echoed by the mock) while A is stuck.
When the proxy throttled, A then resumes reading and must receive every byte the mock managed
to send, in order.

Runs under uvloop and the default asyncio loop.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))

import msgspec
from e2e_kit import LOOP_KINDS, A, Env, created, delta, now, run

from fastproxy.audio import Resampler

MiB = 1024 * 1024
TARGET_BYTES = 200 * MiB  # audio the mock tries to push to the stalled client
PUSH_SECONDS = 4.0  # give up pushing after this long (the throttled outcome stalls the mock)
RSS_GROWTH_LIMIT = 64 * MiB
DELTA_PCM = 48000  # 1 s of 24 kHz audio per delta (64 000 base64 characters)
MOCK_BUFFER_LIMIT = 1 * MiB


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def round_trips(b, count: int) -> list[float]:
    """Send ``count`` 20 ms frames on session B, one at a time; the mock echoes each as an
    audio delta. Returns the round-trip times in seconds."""
    times = []
    for i in range(count):
        mark = len(b.binaries())
        frame = A(960, offset=960 * i)
        t = now()
        b.send_binary(frame)
        got = await b.wait_binaries(mark + 1, timeout=5)
        times.append(now() - t)
        assert got[mark] == frame
        await asyncio.sleep(0.01)
    return times


async def scenario(loop_kind: str) -> None:
    async with Env(loop_kind) as e:
        a = await e.ready()
        b = await e.ready()
        b.up.behaviour.echo = True  # the mock answers each of B's appends with one delta
        baseline_rtt = await round_trips(b, 10)

        ua = a.up
        ua.send(created("resp_1"))
        mark = a.mark()
        event = msgspec.json.encode(delta("resp_1", "item_a1", A(DELTA_PCM)))
        a.transport.underlying_transport.pause_reading()  # A stops reading
        rss_start = rss_bytes()
        rss_peak = rss_start
        pushed = 0
        raw = ua.transport.underlying_transport
        deadline = now() + PUSH_SECONDS
        stalled_since = None
        rtt_during = []

        async def probe() -> None:
            await asyncio.sleep(0.5)
            rtt_during.extend(await round_trips(b, 30))

        prober = e.spawn(probe())
        while pushed < TARGET_BYTES and now() < deadline and not ua.closed:
            if stalled_since is not None and now() - stalled_since > 1.0 and prober.done():
                break  # stalled for a second, B probed meanwhile: the proxy is throttling
            if raw.get_write_buffer_size() > MOCK_BUFFER_LIMIT:
                stalled_since = stalled_since or now()
                await asyncio.sleep(0.005)
                rss_peak = max(rss_peak, rss_bytes())
                continue
            stalled_since = None
            ua.send_raw_text(event)
            pushed += DELTA_PCM
            if pushed % (8 * DELTA_PCM) == 0:
                rss_peak = max(rss_peak, rss_bytes())
                await asyncio.sleep(0)
        await prober
        rss_peak = max(rss_peak, rss_bytes())
        growth = rss_peak - rss_start

        assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / MiB:.1f} MiB"
        if a.closed or a.close_code is not None or ua.closed:
            # outcome 2: A's send buffer overflowed -> close 1008 (client), 1000 (upstream)
            await ua.wait_closed()
            assert ua.close_code == 1000
            a.transport.underlying_transport.resume_reading()
            await a.wait_closed()
            assert a.close_code == 1008
            outcome = "closed"
        else:
            # outcome 1: the proxy stopped reading A's upstream, so the mock stalled
            assert pushed < TARGET_BYTES, "the proxy absorbed 200 MiB for a stalled client"
            assert stalled_since is not None, "the mock never stalled"
            outcome = "throttled"

        # the other session was not slowed down while A was stuck
        assert len(rtt_during) == 30
        assert max(rtt_during) < 0.5, rtt_during
        assert statistics.median(rtt_during) < max(0.05, 5 * statistics.median(baseline_rtt))

        if outcome == "throttled":
            a.transport.underlying_transport.resume_reading()

            def received(c):
                return sum(map(len, c.binaries(mark))) >= pushed

            await a.wait(received, timeout=30)
            binaries = a.binaries(mark)
            assert len(binaries) == pushed // DELTA_PCM
            assert all(x == A(DELTA_PCM) for x in binaries)
            assert not a.closed


@pytest.mark.parametrize("loop_kind", LOOP_KINDS)
def test_stalled_client_is_bounded_and_isolated(loop_kind: str) -> None:
    run(scenario(loop_kind), loop_kind, timeout=60)


async def slow_reader_scenario(loop_kind: str, items: str) -> None:
    """A client that reads late still receives every message intact and in order.

    Small socket buffers (the proxy's SO_SNDBUF towards the client, the client's SO_RCVBUF)
    make the proxy queue its writes in user space while the client is not reading. Output at
    48 kHz doubles each delta, so the client's binary frames (10 000 / 12 000 bytes,
    alternating) are larger than 8 KiB while every upstream event stays under 8 KiB; the
    alternating sizes mean that a frame header rewritten inside a queued write would
    desynchronise the stream. ``items`` "one": every delta is of one item (the relay's armed fast
    path after the first); "alternating": two items take turns, so every delta takes the Session's
    slow path (``SendAudioToClient``).
    """
    settings = {
        "type": "Settings",
        "audio": {"output": {"encoding": "linear16", "sample_rate": 48000}},
    }
    async with Env(loop_kind) as e:
        c = await e.ready(settings)
        u = c.up
        proxy_side = c.conn.client.underlying_transport.get_extra_info("socket")
        proxy_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        client_side = c.transport.underlying_transport.get_extra_info("socket")
        client_side.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        u.send(created("resp_1"))
        c.transport.underlying_transport.pause_reading()
        mark = c.mark()
        sizes = [6000 if i % 2 else 5000 for i in range(100)]
        pcm = [A(size, offset=7 * i) for i, size in enumerate(sizes)]
        upsample = Resampler(24000, 48000)  # the proxy's output converter, offline
        expected = [upsample.process(p) for p in pcm]

        async def resume_later() -> None:
            await asyncio.sleep(0.3)
            c.transport.underlying_transport.resume_reading()

        resumer = e.spawn(resume_later())
        raw = u.transport.underlying_transport
        queued_max = 0
        for n, chunk in enumerate(pcm):
            while raw.get_write_buffer_size():  # the mock never queues (its frames are < 8 KiB)
                await asyncio.sleep(0.001)
            item = "item_a1" if items == "one" or n % 2 == 0 else "item_a2"
            u.send(delta("resp_1", item, chunk))
            if c.conn.client is not None:
                size = c.conn.client.underlying_transport.get_write_buffer_size()
                queued_max = max(queued_max, size)
            await asyncio.sleep(0)
        await resumer
        queued_max = max(queued_max, c.conn.client.underlying_transport.get_write_buffer_size())

        def complete(c):
            return len(c.binaries(mark)) >= len(pcm) or c.closed

        await c.wait(complete, timeout=20)
        assert queued_max > 65536, "the proxy never queued writes: the test proves nothing"
        assert not c.closed, f"the client stream broke: close {c.close_code} {c.close_reason!r}"
        got = c.binaries(mark)
        assert [len(b) for b in got] == [2 * s for s in sizes]
        assert b"".join(got) == b"".join(expected)


@pytest.mark.parametrize("loop_kind", LOOP_KINDS)
@pytest.mark.parametrize("items", ["one", "alternating"])
def test_slow_client_receives_large_frames_intact(loop_kind: str, items: str) -> None:
    run(slow_reader_scenario(loop_kind, items), loop_kind, timeout=60)
