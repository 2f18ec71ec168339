"""Chaos: 300 concurrent sessions stream audio while 10 % of their upstream connections are
killed at random moments (PROTOCOL.md §3.6, §9.1, §9.4).

The mock upstream echoes every ``input_audio_buffer.append`` as one audio delta carrying the
same base64, so each client gets its own audio back through both directions of the proxy: the
bytes it receives prove what the upstream received. Every session streams a pattern unique to it
(cross-talk between sessions would show). At random moments 30 upstream connections are reset
(TCP RST) or closed with an abnormal code. Then:

- every affected client gets exactly one ``Error`` ``upstream_closed`` and close 1011, and what
  it received before is an uncorrupted prefix of what it sent;
- every unaffected session received every frame it sent, byte-identical and in order (frames
  lost = 0), and saw no Error or Warning;
- the proxy tears all 300 pairs down completely once the clients leave.

uvloop only (the production loop); bounded to ~2 s of streaming.
"""

from __future__ import annotations

import asyncio
import random

from e2e_kit import A, now, run
from hardening_kit import REPORT
from net_kit import HEnv, wait_torn_down

SESSIONS = 300
KILLED = SESSIONS // 10
FRAMES = 100  # 2 s of 20 ms frames per session
FRAME = 960
SEED = 20261122


def frame_of(session: int, k: int) -> bytes:
    return A(FRAME, (session * 7919 + k * FRAME) % 60000)


async def _chaos() -> None:
    rng = random.Random(SEED)
    async with HEnv("uvloop", mock={"echo": True}, max_sessions=SESSIONS + 10) as e:
        gate = asyncio.Semaphore(50)

        async def open_one() -> object:
            async with gate:
                return await e.ready()

        clients = list(await asyncio.gather(*(open_one() for _ in range(SESSIONS))))
        conns = [c.conn for c in clients]
        victims = set(rng.sample(range(SESSIONS), KILLED))
        kill_at = {i: rng.randint(5, FRAMES - 5) for i in victims}  # the frame index
        how = {i: rng.choice(["reset", "close_1011", "close_1001"]) for i in victims}
        sent: list[list[bytes]] = [[] for _ in range(SESSIONS)]
        t0 = now()
        for k in range(FRAMES):
            for i, c in enumerate(clients):
                if c.closed or c.close_code is not None:
                    continue
                if kill_at.get(i) == k:
                    u = c.up
                    if how[i] == "reset":
                        u.reset()
                    else:
                        u.close(int(how[i][-4:]), "chaos")
                frame = frame_of(i, k)
                c.send_binary(frame)
                sent[i].append(frame)
            await asyncio.sleep(max(0.0, t0 + (k + 1) * 0.02 - now()))
        stream_s = now() - t0

        survivors = [i for i in range(SESSIONS) if i not in victims]

        def complete() -> bool:
            return all(len(clients[i].binaries()) >= FRAMES for i in survivors) and all(
                clients[i].closed for i in victims
            )

        deadline = now() + 20
        while not complete() and now() < deadline:
            await asyncio.sleep(0.05)

        lost = 0
        for i in survivors:
            c = clients[i]
            got = c.binaries()
            lost += FRAMES - len(got)
            assert got == sent[i], f"session {i}: audio differs ({len(got)}/{FRAMES} frames)"
            assert not c.of("Error") and not c.of("Warning"), c.types()[-5:]
            assert not c.closed
        for i in victims:
            c = clients[i]
            assert c.closed, f"victim {i} ({how[i]}) was not closed: {c.types()[-5:]}"
            errors = c.of("Error")
            assert [x["code"] for x in errors] == ["upstream_closed"], (how[i], errors)
            assert (c.close_code, c.close_reason) == (1011, "upstream_closed"), how[i]
            got = b"".join(c.binaries())
            assert b"".join(sent[i]).startswith(got), f"victim {i}: corrupted audio"
            assert c.types()[-1] == "Error", c.types()[-3:]  # nothing after it
        REPORT.append(
            f"chaos: {SESSIONS} sessions x {FRAMES} frames over {stream_s:.1f} s, "
            f"{KILLED} upstreams killed ({sum(1 for v in how.values() if v == 'reset')} resets); "
            f"frames lost by unaffected sessions: {lost}"
        )
        assert lost == 0
        for i in survivors:
            clients[i].close()
        await wait_torn_down(e, conns, timeout=10)
        assert e.metric("fastproxy_sessions_total", outcome="upstream_failed") == KILLED
        assert e.metric("fastproxy_sessions_active") == 0


def test_chaos_300_sessions_10_percent_upstreams_killed() -> None:
    run(_chaos(), "uvloop", timeout=90)
