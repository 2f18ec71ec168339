"""Plain HTTP routes on the proxy port and on --metrics-port: /livez, /readyz, /metrics."""

from __future__ import annotations

import asyncio
import socket

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from fastproxy.config import load_config
from fastproxy.metrics import Metrics
from fastproxy.net.server import ProxyServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def http_get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def test_health_and_metrics_routes() -> None:
    async def scenario() -> None:
        metrics_port = free_port()
        config = load_config(
            ["--port", "0", "--metrics-port", str(metrics_port), "--max-sessions", "1"],
            {"FASTPROXY_OPENAI_API_KEY": "sk-test", "FASTPROXY_UPSTREAM_URL": "ws://127.0.0.1:9/"},
        )
        server = ProxyServer(config, Metrics(CollectorRegistry(), implementation="c"))
        await server.start(port=0)
        try:
            for port in (server.port, metrics_port):
                status, headers, body = await http_get(port, "/metrics")
                assert status == 200
                assert headers["Content-Type"].startswith("text/plain")
                families = {f.name: f for f in text_string_to_metric_families(body.decode())}
                assert families["fastproxy_sessions_active"].samples[0].value == 0
                info = families["fastproxy_build_info"].samples[0].labels
                assert info["implementation"] == "c"
                assert (await http_get(port, "/livez"))[:1] == (200,)
                status, _, body = await http_get(port, "/readyz")
                assert (status, body) == (200, b"ready")
            assert (await http_get(metrics_port, "/openai"))[0] == 404  # no sessions there
            assert (await http_get(server.port, "/nothing"))[0] == 404
            server.draining = True
            status, _, body = await http_get(server.port, "/readyz")
            assert (status, body) == (503, b"not_ready")
        finally:
            await server.close()

    asyncio.run(scenario())
