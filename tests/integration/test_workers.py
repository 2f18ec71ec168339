"""``fastproxy serve --workers 2``: the supervisor, SO_REUSEPORT workers, multiprocess metrics.

One supervisor (with the built-in mock upstream, which it runs once for both workers) serves
every test of this module. 200 clients each complete a turn and are spread over both workers
(``fastproxy_worker_sessions_total{worker}`` and the ``worker`` field of the workers' log
records); ``/metrics``, answered by whichever worker the kernel picks, adds up every worker's
turns. Then one worker is SIGKILLed with sessions live: only its clients lose their connection,
the others finish a turn, and the supervisor starts a new process in its place that serves the
next sessions. Last, a port held by another program stops the supervisor at once with status 1.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
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
    one_turn,
    open_session,
    scrape,
    start_fleet,
    total,
    turn,
)

CLIENTS = 200
AUDIO_FRAMES = 3
LIVE = 40


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    running = start_fleet(tmp_path_factory.mktemp("workers"), "--workers", "2", "--greeting", "off")
    try:
        yield running
    finally:
        running.stop()


async def settle(port: int, sessions_ended: float, timeout: float = 10.0) -> dict:
    """Scrape until ``sessions_ended`` sessions have ended (their counters are final)."""
    deadline = Deadline(timeout)
    while True:
        samples = await scrape(port)
        if total(samples, "fastproxy_sessions_total") >= sessions_ended or not deadline:
            return samples
        await asyncio.sleep(0.1)


def test_200_clients_are_spread_over_both_workers_and_metrics_add_up(fleet: Fleet) -> None:
    async def scenario() -> None:
        before = await scrape(fleet.port)
        results = await bounded_gather(
            [lambda: one_turn(fleet.url(), AUDIO_FRAMES) for _ in range(CLIENTS)], concurrency=50
        )
        assert not failures(results), failures(results)[:3]
        ended = total(before, "fastproxy_sessions_total") + CLIENTS
        after = await settle(fleet.port, ended)

        def delta(name: str, **labels: str) -> float:
            return total(after, name, **labels) - total(before, name, **labels)

        assert delta("fastproxy_turns_total") == CLIENTS
        assert delta("fastproxy_turns_total", kind="reply") == CLIENTS
        assert delta("fastproxy_sessions_total") == CLIENTS
        assert (
            delta("fastproxy_audio_frames_total", direction="client_in") == CLIENTS * AUDIO_FRAMES
        )
        assert delta("fastproxy_audio_frames_total", direction="client_out") >= CLIENTS
        assert total(after, "fastproxy_sessions_active") == 0
        shares = [delta("fastproxy_worker_sessions_total", worker=w) for w in ("0", "1")]
        assert sum(shares) == CLIENTS and min(shares) > 0, shares
        assert total(after, "fastproxy_build_info") == 1  # one series, not one per worker

    asyncio.run(scenario())
    # The workers' log records carry their index: both closed some of these sessions.
    closers = {
        r.get("worker") for r in fleet.records() if r.get("logger") == "fastproxy.connection"
    }
    assert {0, 1} <= closers, closers


def test_a_killed_worker_loses_only_its_sessions_and_is_restarted(fleet: Fleet) -> None:
    async def scenario() -> None:
        old_pids = fleet.worker_pids()
        assert sorted(old_pids) == [0, 1]
        before = await scrape(fleet.port)
        results = await bounded_gather(
            [lambda: open_session(fleet.url()) for _ in range(LIVE)], concurrency=LIVE
        )
        assert not failures(results), failures(results)[:3]
        clients = [r for r in results if isinstance(r, Client)]
        try:
            mid = await scrape(fleet.port)
            on = {
                w: total(mid, "fastproxy_worker_sessions_total", worker=w)
                - total(before, "fastproxy_worker_sessions_total", worker=w)
                for w in ("0", "1")
            }
            assert on["0"] + on["1"] == LIVE and min(on.values()) > 0, on

            os.kill(old_pids[1], signal.SIGKILL)
            deadline = Deadline(10.0)
            while sum(c.gone for c in clients) < on["1"] and deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # nobody else may go
            lost = [c for c in clients if c.gone]
            assert len(lost) == on["1"]
            assert all(c.close_code is None for c in lost)  # the worker died: no close frame

            survivors = [c for c in clients if not c.gone]
            got = await asyncio.gather(*(turn(c, 2) for c in survivors), return_exceptions=True)
            assert not failures(got), failures(got)[:3]
        finally:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

        # The supervisor started another process for worker 1, which serves new sessions.
        deadline = Deadline(15.0)
        while fleet.worker_pids().get(1) == old_pids[1] and deadline:
            await asyncio.sleep(0.05)
        new_pid = fleet.worker_pids()[1]
        assert new_pid != old_pids[1]
        while not _listening(fleet, new_pid) and deadline:
            await asyncio.sleep(0.05)
        assert _listening(fleet, new_pid)
        assert fleet.worker_pids()[0] == old_pids[0]  # the other worker was left alone

        restarted = await scrape(fleet.port)
        results = await bounded_gather(
            [lambda: one_turn(fleet.url(), 1) for _ in range(LIVE)], concurrency=LIVE
        )
        assert not failures(results), failures(results)[:3]
        ended = total(restarted, "fastproxy_sessions_total") + LIVE
        after = await settle(fleet.port, ended)
        new_share = total(after, "fastproxy_worker_sessions_total", worker="1") - total(
            restarted, "fastproxy_worker_sessions_total", worker="1"
        )
        assert new_share > 0  # only the new pid is worker 1 now
        assert (
            total(after, "fastproxy_worker_restarts_total")
            - total(before, "fastproxy_worker_restarts_total")
            == 1
        )
        # mark_process_dead dropped the dead worker's live sessions from the livesum gauge.
        assert total(after, "fastproxy_sessions_active") == 0

    asyncio.run(scenario())


def _listening(fleet: Fleet, pid: int) -> bool:
    return any(
        "listening on port" in r.get("message", "") and f"(pid {pid})" in r.get("message", "")
        for r in fleet.records()
    )


def test_a_port_held_by_another_program_stops_the_supervisor_with_status_1(
    tmp_path: Path,
) -> None:
    with socket.socket() as holder:  # no SO_REUSEPORT: the workers cannot share this port
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "fastproxy", "serve", "--workers", "2", "--port", str(port)],
            env=clean_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path)),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert "Address already in use" in done.stderr
    assert not list(tmp_path.iterdir())  # its metrics directory was removed
