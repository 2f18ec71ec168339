"""§13.5 Manual commit (``turn_detection`` = ``manual``): P-45 … P-50, end to end."""

from __future__ import annotations

import asyncio

from e2e_kit import S0, A, created, done, now, up_events, up_times, up_types

from fastproxy.testing import Pause

COMMIT = {"type": "input_audio_buffer.commit"}
CREATE = {"type": "response.create"}
SLACK = 0.35  # H6 allows 150 ms; the machine is noisy


def control(u):
    """Upstream events other than appends and the session.update."""
    return [e for e in up_events(u, appends=False) if e["type"] not in ("session.update",)]


async def sleep_until(t):
    await asyncio.sleep(max(0.0, t - now()))


async def test_p45_nothing_below_100_ms(env):
    async with env(turn_detection="manual") as e:
        c = await e.ready()
        u = c.up
        c.send_binary(A(500))
        await asyncio.sleep(0.6)
        assert control(u) == []
        t1 = now()
        c.send_binary(A(4300, offset=500))
        await u.wait_for_event("input_audio_buffer.commit", timeout=3)
        (commit_at,) = up_times(u, "input_audio_buffer.commit")
        assert 0.38 <= commit_at - t1 <= 0.4 + SLACK
        await e.quiet(u)
        assert control(u) == [COMMIT, CREATE]


async def test_p46_commit_after_gap(env):
    async with env(turn_detection="manual") as e:
        c = await e.ready()
        u = c.up
        t0 = now()
        c.send_binary(A(40000))
        await u.wait_for_event("response.create", timeout=3)
        (commit_at,) = up_times(u, "input_audio_buffer.commit")
        assert 0.38 <= commit_at - t0 <= 0.4 + SLACK
        types = up_types(u, appends=False)
        assert types[-2:] == ["input_audio_buffer.commit", "response.create"]
        await e.quiet(u)
        assert control(u) == [COMMIT, CREATE]


async def test_p47_debounce_restarts(env):
    async with env(turn_detection="manual") as e:
        c = await e.ready()
        u = c.up
        t0 = now()
        c.send_binary(A(4800))
        await sleep_until(t0 + 0.25)
        c.send_binary(A(4800, offset=4800))
        await u.wait_for_event("response.create", timeout=3)
        (commit_at,) = up_times(u, "input_audio_buffer.commit")
        assert 0.63 <= commit_at - t0 <= 0.65 + SLACK
        await e.quiet(u)
        assert control(u) == [COMMIT, CREATE]


async def test_p48_gap_during_response(env):
    async with env(turn_detection="manual") as e:
        done_at: list[float] = []
        e.on_response_create(
            [created("resp_1"), Pause(600), lambda conn, req: done_at.append(now()), done("resp_1")]
        )
        c = await e.ready()
        u = c.up
        t0 = now()
        c.send_binary(A(40000))
        await sleep_until(t0 + 0.5)
        c.send_binary(A(4800, offset=40000))
        await u.wait_for_event("response.create", nth=1, timeout=4)
        commits = up_times(u, "input_audio_buffer.commit")
        creates = up_times(u, "response.create")
        assert len(commits) == 2 and len(creates) == 2
        assert 0.38 <= commits[0] - t0 <= 0.4 + SLACK
        # nothing at about t=900: the second gap fell during resp_1
        assert commits[1] >= done_at[0]
        assert commits[1] - done_at[0] <= 0.2
        await e.quiet(u)
        assert control(u) == [COMMIT, CREATE, COMMIT, CREATE]


async def test_p49_mulaw_threshold(env):
    mulaw = {"input": {"encoding": "mulaw", "sample_rate": 8000}}
    async with env(turn_detection="manual") as e:
        c = await e.ready({**S0, "audio": mulaw})
        u = c.up
        c.send_binary(b"\x7f" * 799)
        await asyncio.sleep(0.6)
        assert control(u) == []
        t1 = now()
        c.send_binary(b"\x7f")
        await u.wait_for_event("response.create", timeout=3)
        (commit_at,) = up_times(u, "input_audio_buffer.commit")
        assert 0.38 <= commit_at - t1 <= 0.4 + SLACK
        await e.quiet(u)
        assert control(u) == [COMMIT, CREATE]


async def test_p50_client_close_with_pending_audio(env):
    async with env(turn_detection="manual") as e:
        c = await e.ready()
        u = c.up
        c.send_binary(A(40000))
        await asyncio.sleep(0.1)
        c.close(1000)
        await u.wait_closed(timeout=3)
        assert u.close_code == 1000
        assert control(u) == []
        await asyncio.sleep(0.5)
        assert control(u) == []
