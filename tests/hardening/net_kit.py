"""Socket-level helpers of the hardening suite: the conformance environment with metrics, and
checks that a proxy connection was torn down completely.

:class:`HEnv` is ``e2e_kit.Env`` (a real ProxyServer, the mock upstream and picows clients in
one event loop, with the conformance suite's end-of-test invariants: wire contract, no logged
exception, no loop error, no ``internal_error``) plus a private Prometheus registry, so each test
can read the metrics PROTOCOL.md §12 and README "Metrics" promise. :func:`wait_torn_down` is the
leak check of a fault test: the server forgot the connection, the connection finished (both
legs disconnected), cancelled every timer it owned, and its transports are closed.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from e2e_kit import Env, TapServer
from prometheus_client import CollectorRegistry

from fastproxy.metrics import Metrics


class HEnv(Env):
    """``e2e_kit.Env`` whose proxy exports metrics to a private registry (``self.metrics``)."""

    def make_server(self, config: Any) -> TapServer:
        self.metrics = Metrics(registry=CollectorRegistry())
        return TapServer(config, self.metrics)

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else value

    def conn_of(self, client: Any) -> Any:
        return client.conn


def torn_down(conn: Any) -> bool:
    return bool(conn.finished)


async def wait_torn_down(e: Env, conns: list[Any] | None = None, timeout: float = 5.0) -> None:
    """Wait until the proxy forgot every connection in ``conns`` (default: all it ever had)
    and check that each released everything it owned."""
    conns = list(e.server.by_id.values()) if conns is None else conns
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(c.finished for c in conns) and not (set(conns) & e.server.connections):
            break
        await asyncio.sleep(0.01)
    pending = [c.connection_id for c in conns if not c.finished]
    assert not pending, f"{len(pending)} proxy connection(s) never finished: {pending[:3]}"
    assert not (set(conns) & e.server.connections)
    for conn in conns:
        assert not conn.timers, f"Session timers outlived the connection: {list(conn.timers)}"
        net_timers = getattr(conn, "net_timers", {})
        assert not net_timers, f"network timers outlived the connection: {list(net_timers)}"
        for transport in (conn.client, conn.upstream):
            if transport is not None:
                assert transport.is_disconnected, "a transport outlived its connection"
        task = conn.upstream_task
        assert task is None or task.done(), "the upstream connect task outlived the connection"


def rss_bytes(pid: int | None = None) -> int:
    with open(f"/proc/{pid or 'self'}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def fd_count(pid: int | None = None) -> int:
    return len(os.listdir(f"/proc/{pid or 'self'}/fd"))


MiB = 1024 * 1024
