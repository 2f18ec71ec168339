"""Graceful drain across workers (PROTOCOL.md §3.6) with ``fastproxy serve --workers 2``.

The mock upstream runs in this test's event loop, so the test sees exactly what reaches the
upstream and when. With sessions live and streaming audio, SIGTERM goes to the supervisor:
new upgrades get ``503 draining`` and ``/readyz`` turns 503, while the live pairs keep relaying
audio both ways (appends keep reaching the mock, a turn still brings agent audio) until
``drain_timeout_ms``; then both legs of every pair close with 1001 and the supervisor exits 0.
A second SIGTERM, or a SIGINT, during the drain ends everything at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from fleet_kit import (
    REPO_ROOT,
    Client,
    Deadline,
    Fleet,
    bounded_gather,
    clean_env,
    failures,
    http_request,
    open_session,
    start_fleet,
    turn,
)

from fastproxy.testing.mock_upstream import MockUpstream

DRAIN_MS = 2500
SESSIONS = 6
STREAM_EVERY_S = 0.04


async def start(tmp: Path, mock: MockUpstream, drain_ms: int) -> Fleet:
    env = clean_env(FASTPROXY_OPENAI_API_KEY="sk-test")
    args = ["--workers", "2", "--greeting", "off", "--drain-timeout-ms", str(drain_ms)]
    args += ["--upstream-url", mock.url]
    return await asyncio.get_running_loop().run_in_executor(
        None, lambda: start_fleet(tmp, *args, env=env)
    )


async def stream(client: Client) -> None:
    """Client audio, one 20 ms frame every 40 ms, until the connection goes."""
    while not client.gone:
        client.send_audio(1)
        await asyncio.sleep(STREAM_EVERY_S)


async def exit_code(fleet: Fleet, timeout: float) -> int | None:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(Exception):
        return await loop.run_in_executor(None, lambda: fleet.proc.wait(timeout=timeout))
    return None


async def open_streaming(fleet: Fleet, count: int) -> tuple[list[Client], list[asyncio.Task[None]]]:
    results = await bounded_gather([lambda: open_session(fleet.url()) for _ in range(count)], count)
    assert not failures(results), failures(results)[:3]
    clients = [r for r in results if isinstance(r, Client)]
    return clients, [asyncio.create_task(stream(c)) for c in clients]


def test_sigterm_drains_every_worker_then_closes_with_1001(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with MockUpstream(host="127.0.0.1", port=0) as mock:
            fleet = await start(tmp_path, mock, DRAIN_MS)
            tasks: list[asyncio.Task[None]] = []
            try:
                clients, tasks = await open_streaming(fleet, SESSIONS)
                await asyncio.sleep(0.3)
                t0 = time.monotonic()
                os.kill(fleet.pid, signal.SIGTERM)
                await asyncio.sleep(0.3)

                # New upgrades are refused, on whichever worker the kernel picks.
                for _ in range(4):
                    assert await http_request(fleet.port, "/openai", upgrade=True) == (
                        503,
                        b"draining",
                    )
                assert (await http_request(fleet.port, "/readyz"))[0] == 503

                # Live pairs keep working: a turn brings agent audio, appends keep flowing.
                got = await asyncio.gather(*(turn(c, 1) for c in clients), return_exceptions=True)
                assert not failures(got), failures(got)[:3]
                assert all(not c.gone for c in clients)

                deadline = Deadline(DRAIN_MS / 1000 + 5.0)
                while not all(c.gone for c in clients) and deadline:
                    await asyncio.sleep(0.05)
                assert all(c.close_code == 1001 for c in clients), [c.close_code for c in clients]
                for c in clients:
                    assert c.close_at is not None
                    assert DRAIN_MS / 1000 - 0.05 <= c.close_at - t0 <= DRAIN_MS / 1000 + 1.5

                ups = mock.connections
                assert len(ups) == SESSIONS
                late = t0 + DRAIN_MS / 1000 - 0.6
                for up in ups:
                    await up.wait_closed(timeout=5.0)
                    assert up.close_code == 1001
                    appends = [r.t for r in up.received if r.type == "input_audio_buffer.append"]
                    assert max(appends) > late, "client audio stopped reaching the upstream early"

                assert await exit_code(fleet, 10.0) == 0
                errors = [r for r in fleet.records() if r.get("level") == "error"]
                assert not errors, errors[:3]
                assert not list((tmp_path / "metrics").iterdir())  # the run's directory is gone
            finally:
                for task in tasks:
                    task.cancel()
                fleet.kill()

    asyncio.run(scenario())


@pytest.mark.parametrize("second", ["SIGTERM", "SIGINT"])
def test_a_second_sigterm_or_a_sigint_ends_the_drain_at_once(tmp_path: Path, second: str) -> None:
    async def scenario() -> None:
        async with MockUpstream(host="127.0.0.1", port=0) as mock:
            fleet = await start(tmp_path, mock, 30_000)
            tasks: list[asyncio.Task[None]] = []
            try:
                clients, tasks = await open_streaming(fleet, 4)
                os.kill(fleet.pid, signal.SIGTERM)
                await asyncio.sleep(0.3)
                assert all(not c.gone for c in clients)
                t1 = time.monotonic()
                os.kill(fleet.pid, getattr(signal, second))
                deadline = Deadline(5.0)
                while not all(c.gone for c in clients) and deadline:
                    await asyncio.sleep(0.02)
                assert all(c.close_code == 1001 for c in clients), [c.close_code for c in clients]
                assert all(c.close_at is not None and c.close_at - t1 < 2.0 for c in clients)
                assert await exit_code(fleet, 10.0) == 0
            finally:
                for task in tasks:
                    task.cancel()
                fleet.kill()

    asyncio.run(scenario())


def test_systemd_unit_lets_the_drain_finish() -> None:
    from fastproxy.config import SETTINGS

    unit = (REPO_ROOT / "deploy" / "systemd" / "fastproxy.service").read_text()
    settings = dict(
        line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#")
    )
    assert settings["KillSignal"] == "SIGTERM"
    assert settings["KillMode"] == "mixed"  # SIGTERM to the supervisor, which tells the workers
    assert settings["Restart"] == "on-failure"
    assert settings["EnvironmentFile"].startswith("/etc/")
    assert "--api-key" not in settings["ExecStart"]
    stop_s = int(settings["TimeoutStopSec"].removesuffix("s"))
    drain_ms = next(s.default for s in SETTINGS if s.name == "drain_timeout_ms")
    assert isinstance(drain_ms, int)
    assert stop_s > drain_ms / 1000 + 5  # drain, 1001 closes, exit
