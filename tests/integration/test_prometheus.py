"""A real Prometheus scrapes a running fastproxy on loopback and sees the turns and violations.

Needs the Debian ``prometheus`` binary (``.ci/run`` installs it); skipped with a clear message
only when it is not installed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from fastproxy.config import load_config
from fastproxy.metrics import Metrics
from fastproxy.net.server import ProxyServer
from fastproxy.testing.mock_upstream import MockUpstream

PROMETHEUS = shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Client(WSListener):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.messages.append(json.loads(frame.get_payload_as_bytes()))
            self.changed.set()

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.messages):
                self.changed.clear()
                await self.changed.wait()


def count(messages: list[dict[str, Any]], type_name: str) -> int:
    return sum(1 for m in messages if m.get("type") == type_name)


async def drive_two_turns_and_a_violation(port: int) -> None:
    client = Client()
    transport, _ = await ws_connect(lambda: client, f"ws://127.0.0.1:{port}/openai")
    transport.send(WSMsgType.TEXT, b'{"type":"Settings"}')
    await client.wait_for(lambda ms: count(ms, "SettingsApplied") == 1)
    for turn in (1, 2):
        transport.send(WSMsgType.TEXT, b'{"type":"InjectUserMessage","content":"hi"}')
        await client.wait_for(lambda ms, n=turn: count(ms, "AgentAudioDone") == n)
    transport.send(WSMsgType.TEXT, b'{"type":"CustomProbe"}')
    await client.wait_for(lambda ms: count(ms, "Error") == 1)
    transport.send_close()
    transport.disconnect()


def query(prom_port: int, expr: str) -> float | None:
    url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def poll(prom_port: int, expr: str, expected: float, deadline: float) -> float | None:
    value = None
    loop = asyncio.get_running_loop()
    while time.monotonic() < deadline:
        try:
            value = await loop.run_in_executor(None, query, prom_port, expr)
        except OSError:
            value = None
        if value == expected:
            return value
        await asyncio.sleep(0.5)
    return value


@pytest.mark.skipif(PROMETHEUS is None, reason="the Debian prometheus package is not installed")
def test_real_prometheus_scrapes_turns_and_violations(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))


async def _scenario(tmp_path: Path) -> None:
    assert PROMETHEUS is not None
    metrics = Metrics(CollectorRegistry())
    async with MockUpstream() as mock:
        config = load_config(
            ["--port", "0", "--upstream-url", mock.url], {"FASTPROXY_OPENAI_API_KEY": "sk-test"}
        )
        server = ProxyServer(config, metrics)
        await server.start(port=0)
        prom_port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: fastproxy\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{server.port}']}}]\n"
        )
        prom = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await drive_two_turns_and_a_violation(server.port)
            deadline = time.monotonic() + 45
            turns = await poll(prom_port, "sum(fastproxy_turns_total)", 2.0, deadline)
            violation = 'fastproxy_protocol_violations_total{kind="disallowed_client_message_type"}'
            violations = await poll(prom_port, violation, 1.0, deadline)
            up = await poll(prom_port, 'up{job="fastproxy"}', 1.0, deadline)
        finally:
            prom.terminate()
            try:
                prom.wait(timeout=10)
            except subprocess.TimeoutExpired:
                prom.kill()
            await server.close()
    assert up == 1.0
    assert turns == 2.0
    assert violations == 1.0
    # The same exposition parses with prometheus_client's own parser.
    body, _ = metrics.render()
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert {"fastproxy_turns", "fastproxy_sessions_active"} <= names
