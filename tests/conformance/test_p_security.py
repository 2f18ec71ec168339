"""§13.12 Security and limits: P-111 … P-115, end to end over real sockets."""

from __future__ import annotations

import asyncio
import io
import logging

from e2e_kit import S0, A, http_request, up_appended

from fastproxy.logs import setup_logging


async def test_p111_client_authentication(env):
    async with env(auth="token", auth_tokens="s3cret") as e:
        refused = [
            {},
            {"Authorization": "Token wrong"},
        ]
        for headers in refused:
            r = await http_request(e.port, "/openai", headers)
            assert (r.status, r.body) == (401, b"unauthorized"), headers
            assert "sec-websocket-protocol" not in r.headers
        # credentials in the query string are not accepted (§11.1)
        r = await http_request(e.port, "/openai?token=s3cret")
        assert r.status == 401
        await asyncio.sleep(0.1)
        assert e.mock.tcp_accepted == 0  # refused clients open no upstream connection
        assert not e.server.by_id
        accepted = [
            ({"Authorization": "Token s3cret"}, None),
            ({"Authorization": "bearer s3cret"}, None),
            ({"Sec-WebSocket-Protocol": "token, s3cret"}, "token"),
        ]
        for headers, protocol in accepted:
            r = await http_request(e.port, "/openai", headers)
            assert r.status == 101, headers
            assert r.headers.get("sec-websocket-protocol") == protocol
            c = await e.connect(headers=headers)
            assert c.response.status == 101
            assert c.response.headers.get("Sec-WebSocket-Protocol") == protocol
            assert "s3cret" not in str(c.response.headers)
        assert len(e.server.by_id) == 6
    async with env() as e:  # auth none: the token subprotocol is still selected
        c = await e.connect(headers={"Sec-WebSocket-Protocol": "token, anything"})
        assert c.response.headers.get("Sec-WebSocket-Protocol") == "token"
        plain = await e.connect(headers={"Sec-WebSocket-Protocol": "chat, token"})
        assert plain.response.headers.get("Sec-WebSocket-Protocol") is None


async def test_p112_origin_allowlist(env):
    async with env(allowed_origins="https://app.example.com") as e:
        r = await http_request(e.port, "/openai", {"Origin": "https://evil.example.com"})
        assert (r.status, r.body) == (403, b"origin_not_allowed")
        r = await http_request(e.port, "/openai", {"Origin": "https://APP.example.com"})
        assert r.status == 101
        r = await http_request(e.port, "/openai")
        assert r.status == 101
        c = await e.connect(headers={"Origin": "https://APP.example.com"})
        assert c.types() == ["Welcome"]


async def test_p113_connection_limits(env):
    async with env(max_sessions=2) as e:
        a = await e.ready()
        await e.ready()
        r = await http_request(e.port, "/openai")
        assert (r.status, r.body) == (503, b"too_many_sessions")
        a.close()
        await a.wait_closed()
        await a.up.wait_closed()
        for _ in range(100):
            if len(e.server.connections) < 2:
                break
            await asyncio.sleep(0.02)
        c = await e.ready()
        assert c.types() == ["Welcome", "SettingsApplied"]
    async with env(max_sessions_per_address=1) as e:
        await e.ready()
        r = await http_request(e.port, "/openai")
        assert (r.status, r.body) == (429, b"too_many_sessions_from_address")


async def test_p114_held_queue_overflow(env):
    async with env(queue_max_messages=10, mock={"answer_session_update": False}) as e:
        c = await e.connect()
        u = await e.upstream_of(c)
        c.send(S0)
        await u.wait_for_event("session.update")
        for i in range(10):
            c.send_binary(A(960, offset=960 * i))
        await asyncio.sleep(0.2)
        assert c.types() == ["Welcome"] and not c.closed
        c.send_binary(A(960, offset=9600))
        await c.wait_closed()
        assert c.types() == ["Welcome", "Error"]
        assert c.json()[1]["code"] == "client_queue_overflow"
        assert c.close_code == 1008
        await u.wait_closed()
        assert u.close_code == 1000
        assert up_appended(u) == []


SECRET_KEY = "sk-test-SECRET"
SECRET_TOKEN = "tok-SECRET"


def leaks(record: logging.LogRecord) -> list[str]:
    texts = [record.getMessage()]
    for key, value in record.__dict__.items():
        if key in ("msg", "args", "message"):
            continue
        texts.append(f"{key}={value!r}")
    found = []
    for text in texts:
        for secret in (SECRET_KEY, SECRET_TOKEN):
            if secret in text:
                found.append(text)
    return found


async def test_p115_secrets(env):
    root = logging.getLogger()
    saved_level, saved_factory = root.level, logging.getLogRecordFactory()
    saved_handlers = list(root.handlers)
    out = io.StringIO()
    async with env(
        log_level="debug", api_key=SECRET_KEY, auth="token", auth_tokens=SECRET_TOKEN
    ) as e:
        try:
            setup_logging("debug", "text", e.config.secrets, stream=out)
            logging.getLogger("fastproxy").setLevel(logging.DEBUG)
            c = await e.ready(headers={"Authorization": f"Token {SECRET_TOKEN}"})
            assert c.up.header("Authorization") == f"Bearer {SECRET_KEY}"
            mark = c.mark()
            c.up.send(
                {
                    "type": "error",
                    "error": {
                        "code": "invalid_api_key",
                        "message": f"Incorrect API key provided: {SECRET_KEY}",
                    },
                }
            )
            err = await c.wait_type("Error", since=mark)
            c.close()
            await c.up.wait_closed()
        finally:
            for h in list(root.handlers):
                if h not in saved_handlers:
                    root.removeHandler(h)
            root.setLevel(saved_level)
            logging.setLogRecordFactory(saved_factory)
            logging.captureWarnings(False)
    assert err == {
        "type": "Error",
        "description": "Incorrect API key provided: [redacted]",
        "code": "invalid_api_key",
    }
    text = out.getvalue()
    assert text, "nothing was logged at debug level"
    assert SECRET_KEY not in text and SECRET_TOKEN not in text
    assert "Incorrect API key provided: [redacted]" in text  # the error was logged, redacted
    leaked = [t for r in e.logs.records for t in leaks(r)]
    assert not leaked, leaked
