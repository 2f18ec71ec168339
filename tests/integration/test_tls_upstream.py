"""The upstream leg over TLS (``wss://``), as with the real OpenAI Realtime API.

The mock upstream serves ``wss://127.0.0.1`` with a certificate from a throwaway test CA
(trustme). A proxy that trusts that CA completes a turn with audio through it and sends the
API key as ``Authorization: Bearer``; a proxy with the default trust store refuses the
certificate and tells the client ``upstream_unavailable`` without leaking the key.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any

import pytest
import uvloop
from websockets.asyncio.client import ClientConnection, connect

from fastproxy.config import load_config
from fastproxy.net.server import ProxyServer
from fastproxy.testing import MockUpstream

trustme = pytest.importorskip("trustme")

API_KEY = "sk-tls-test"
LOOPS = pytest.mark.parametrize("run", [uvloop.run, asyncio.run], ids=["uvloop", "asyncio"])


def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(the mock's server context, a client context trusting only the test CA)."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


async def recv_json(ws: ClientConnection, type_: str) -> dict[str, Any]:
    """The next JSON message of ``type_`` (binary audio and other types are skipped)."""
    while True:
        message = await asyncio.wait_for(ws.recv(), 5)
        if isinstance(message, str):
            event = json.loads(message)
            if event["type"] == type_:
                return dict(event)


async def run_proxy(mock: MockUpstream, ssl_context: ssl.SSLContext | None) -> ProxyServer:
    config = load_config(
        ["--port", "0", "--upstream-url", mock.url, "--no-metrics"],
        {"FASTPROXY_OPENAI_API_KEY": API_KEY},
    )
    server = ProxyServer(config, ssl_context=ssl_context)
    await server.start(port=0)
    return server


@LOOPS
def test_a_turn_through_a_tls_upstream(run: Any) -> None:
    async def scenario() -> None:
        server_ctx, client_ctx = tls_contexts()
        mock = await MockUpstream(ssl=server_ctx).start()
        assert mock.url.startswith("wss://127.0.0.1:")
        proxy = await run_proxy(mock, client_ctx)
        try:
            async with connect(f"ws://127.0.0.1:{proxy.port}/openai") as ws:
                await recv_json(ws, "Welcome")
                settings = {"type": "Settings", "agent": {"think": {"prompt": "Be brief."}}}
                await ws.send(json.dumps(settings))
                await recv_json(ws, "SettingsApplied")
                await ws.send(json.dumps({"type": "InjectUserMessage", "content": "Hi there"}))
                audio = 0
                while True:  # the mock's default reply: transcript, audio, AgentAudioDone
                    message = await asyncio.wait_for(ws.recv(), 5)
                    if isinstance(message, bytes):
                        audio += len(message)
                    elif json.loads(message)["type"] == "AgentAudioDone":
                        break
                assert audio > 0
            path, headers = mock.upgrade_requests[0]
            assert path.startswith("/v1/realtime")
            auth = {k.lower(): v for k, v in headers.items()}["authorization"]
            assert auth == f"Bearer {API_KEY}"
        finally:
            await proxy.close()
            await mock.stop()

    run(scenario())


@LOOPS
def test_an_untrusted_upstream_certificate_is_refused(run: Any) -> None:
    async def scenario() -> None:
        server_ctx, _ = tls_contexts()
        mock = await MockUpstream(ssl=server_ctx).start()
        proxy = await run_proxy(mock, None)  # the system's trust store: not the test CA
        try:
            async with connect(f"ws://127.0.0.1:{proxy.port}/openai") as ws:
                await recv_json(ws, "Welcome")
                error = await recv_json(ws, "Error")
                assert error["code"] == "upstream_unavailable"
                assert "TLS failed" in error["description"], error
                assert API_KEY not in json.dumps(error)
                await asyncio.wait_for(ws.wait_closed(), 5)
                assert ws.close_code == 1011
            assert mock.opened == 0  # no WebSocket was ever opened upstream
        finally:
            await proxy.close()
            await mock.stop()

    run(scenario())
