"""Soak / leak check, short CI form of ``benchmarks/soak.py`` (issue #8 item 3).

500 sessions through a proxy in its own process, in waves, each a full turn (Settings, audio,
InjectUserMessage, the spoken reply, close). Right after the last connection has finished, the
proxy process must hold no more asyncio tasks, scheduled timers, transports, ``Connection`` /
``Session`` / relay objects or file descriptors than after the warm-up, and its RSS must be
within 10 % of that baseline. The full run (10,000 sessions) is README "Hardening".

This is also the regression test of a leak the soak found: the 2 s close-handshake fallback was
an untracked ``call_later`` holding the transport, so every finished session kept a timer, its
WebSocket transport and its buffers alive for 2 more seconds (500 sessions: timers 301 → 1651,
transports 300 → 1650, RSS +22 %). The connection now owns those timers and cancels them when
both legs are gone.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from e2e_kit import run
from hardening_kit import REPORT

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def _soak_module() -> object:
    spec = importlib.util.spec_from_file_location("fastproxy_soak", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fastproxy_soak"] = module
    spec.loader.exec_module(module)
    return module


def test_soak_500_sessions_leave_nothing_behind() -> None:
    soak = _soak_module()
    impl = "py" if os.environ.get("FASTPROXY_NO_EXTENSIONS") == "1" else "c"
    lines: list[str] = []
    result = run(
        soak.run_soak(  # type: ignore[attr-defined]
            sessions=500, wave=250, concurrency=50, warmup=200, impl=impl, log=lines.append
        ),
        "uvloop",
        timeout=120,
    )
    REPORT.append(f"soak ({impl}): " + result.summary())
    assert result.failures == 0, lines
    assert not result.leaks, (result.leaks, lines)
    assert result.final["accepted"] == 700


async def _flush_retention() -> None:
    import asyncio
    import gc
    import weakref

    from net_kit import HEnv, wait_torn_down

    from fastproxy.net import server as server_module

    saved = server_module.COUNTER_FLUSH_S
    server_module.COUNTER_FLUSH_S = 0.02
    try:
        async with HEnv("uvloop") as e:
            c = await e.ready()
            await asyncio.sleep(0.1)  # the counter flush has visited the connection
            conn = c.conn
            ref = weakref.ref(conn)
            c.close()
            await wait_torn_down(e, [conn])
            del conn
            c.conn = None
            e.server.by_id.clear()  # the test server's own index of connections
            await asyncio.sleep(0.1)  # more flushes, now over no connection at all
            gc.collect()
            holders = [type(r).__name__ for r in gc.get_referrers(ref())] if ref() else []
            assert ref() is None, f"a finished Connection is still referenced by {holders}"
    finally:
        server_module.COUNTER_FLUSH_S = saved


def test_counter_flush_does_not_retain_a_finished_connection() -> None:
    run(_flush_retention(), "uvloop")
