"""End-to-end in-process relay of one frame: compiled relay vs pure-Python twin.

Each round feeds the bytes of one WebSocket frame into a real picows ``WSProtocol`` (exactly what
uvloop does after a ``recv``), picows parses it and calls the relay's listener, the relay converts
it, and picows frames the result onto the other leg's transport. Only the sockets are missing:
the transports are stand-ins whose ``write`` drops the bytes, so the figure is the proxy's
user-space cost of one relayed frame (the kernel's send/recv, paid alike by every build, is what
the end-to-end benchmark adds). Two directions:

- ``client->upstream``: a masked binary 20 ms PCM frame from the client → (resample) →
  ``input_audio_buffer.append`` text frame, masked, to the upstream;
- ``upstream->client``: a ``response.output_audio.delta`` text frame of the armed response →
  scan + base64 decode → (resample) → binary frame to the client.

Ways: ``c`` (compiled relay, ``ext/_relay_c.pyx``), ``py`` (the twin with the pure-Python kernels:
what ``FASTPROXY_NO_EXTENSIONS=1`` runs), ``py-relay+c-kernels`` (the twin's Python listener
over the compiled kernels: how much of the twin's cost is the per-frame Python call chain), and
``picows-floor`` (picows' own no-op listener: parsing and dispatch alone). Run
``pytest benchmarks/test_bench_relay.py`` (``--benchmark-autosave`` / ``--benchmark-compare``).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import os
import re
import socket
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from picows import WSListener, WSMsgType
from picows.picows import WSProtocol  # type: ignore[attr-defined]

from fastproxy.net import relay_py

WAYS = ["c", "py", "py-relay+c-kernels", "picows-floor"]
FORMATS = {"20ms@24k": 24000, "20ms@16k": 16000}
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_LOG = logging.getLogger("bench.relay")


class _Owner:
    """The connection side of the relay, reduced to no-ops (every callback is a cold path)."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: None


class _Sink:
    """An asyncio transport stand-in: keeps the last few writes, sends nothing.

    ``get_write_buffer_size`` never returns 0, so picows skips its direct ``send()`` fast path
    and hands every frame to ``write`` (``deque.append``: C, no Python frame)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.written: deque[bytes] = deque(maxlen=4)
        self.write = self.written.append
        self.get_write_buffer_size = itertools.repeat(1).__next__

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {
            "socket": self.sock,
            "peername": ("127.0.0.1", 1),
            "sockname": ("127.0.0.1", 2),
        }.get(name, default)

    def writelines(self, data: Any) -> None:
        for chunk in data:
            self.written.append(bytes(chunk))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _feed(protocol: Any, data: bytes) -> None:
    view = protocol.get_buffer(-1)
    view[: len(data)] = data
    protocol.buffer_updated(len(data))


def _frame(opcode: int, payload: bytes, mask: bytes | None) -> bytes:
    n = len(payload)
    head = bytes([0x80 | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _protocol(client_side: bool, factory: Callable[..., Any]) -> Any:
    return WSProtocol(
        "127.0.0.1:1" if client_side else None,
        "/v1/realtime" if client_side else None,
        client_side,
        factory,
        _LOG,
        True,
        None,  # no handshake timer
        False,  # no auto ping
        10.0,
        10.0,
        0,
        True,
        16 * 1024 * 1024,
        None,
        4096,
    )


class Pair:
    """One relay between two picows protocols on stand-in transports, handshakes done."""

    def __init__(self, way: str, rate: int, sockets: tuple[socket.socket, socket.socket]) -> None:
        self.relay: Any = _make_relay(way)
        floor = way == "picows-floor"
        client_listener = WSListener() if floor else self.relay.client_listener
        upstream_listener = WSListener() if floor else self.relay.upstream_listener
        self.client = _protocol(False, lambda request: client_listener)
        self.client_sink = _Sink(sockets[0])
        self.client.connection_made(self.client_sink)
        _feed(
            self.client,
            b"GET /openai HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n",
        )
        self.upstream = _protocol(True, lambda: upstream_listener)
        self.upstream_sink = _Sink(sockets[1])
        self.upstream.connection_made(self.upstream_sink)
        key = re.search(rb"Sec-WebSocket-Key: (\S+)", self.upstream_sink.written[-1])
        assert key is not None
        accept = base64.b64encode(hashlib.sha1(key.group(1) + _GUID).digest())
        _feed(
            self.upstream,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n",
        )
        if not floor:
            assert self.relay.client is not None and self.relay.upstream is not None
            self.relay.configure_formats("linear16", rate, "linear16", rate)
            self.relay.gate_open = True
            self.relay.arm("resp_1", "item_1")


def _make_relay(way: str) -> Any:
    if way == "c":
        if os.environ.get("FASTPROXY_NO_EXTENSIONS") == "1":
            pytest.skip("compiled relay disabled (FASTPROXY_NO_EXTENSIONS=1)")
        from fastproxy.net._relay_c import Relay

        return Relay(_Owner(), 1 << 24, 1 << 24, 1 << 24)
    return relay_py.Relay(_Owner(), 1 << 24, 1 << 24, 1 << 24)


@pytest.fixture(scope="module")
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback TCP pair: picows sets TCP options on the transport's socket."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        a = socket.create_connection(server.getsockname())
        b, _ = server.accept()
    with a, b:
        yield a, b


@pytest.fixture
def pair(
    request: pytest.FixtureRequest,
    sockets: tuple[socket.socket, socket.socket],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str, int], Pair]:
    import uvloop

    loop = uvloop.new_event_loop()
    request.addfinalizer(loop.close)

    def make(way: str, rate: int) -> Pair:
        if way == "py":
            from fastproxy.audio import _audio_py

            monkeypatch.setattr(relay_py, "audio", _audio_py)

        async def build() -> Pair:  # picows needs a running loop to create its objects
            return Pair(way, rate, sockets)

        return loop.run_until_complete(build())

    return make


def _pcm(rate: int) -> bytes:
    return bytes(range(256)) * (rate // 25 // 256) + bytes(rate // 25 % 256)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("way", WAYS)
def test_client_to_upstream(benchmark: Any, pair: Any, way: str, fmt: str) -> None:
    benchmark.group = f"relay one frame client->upstream {fmt}"
    rate = FORMATS[fmt]
    p = pair(way, rate)
    data = _frame(WSMsgType.BINARY, _pcm(rate), mask=b"\x01\x02\x03\x04")
    _feed(p.client, data)
    if way != "picows-floor":
        sent = p.upstream_sink.written[-1]
        assert b"input_audio_buffer.append" not in sent  # masked on the wire ...
        assert p.relay.frames_in == 1  # ... but framed and sent once
    benchmark(_feed, p.client, data)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("way", WAYS)
def test_upstream_to_client(benchmark: Any, pair: Any, way: str, fmt: str) -> None:
    benchmark.group = f"relay one frame upstream->client {fmt}"
    rate = FORMATS[fmt]
    p = pair(way, rate)
    delta = json.dumps(
        {
            "type": "response.output_audio.delta",
            "event_id": "event_kJDFWvEVy6L3IGxBSGHxT",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(_pcm(24000)).decode(),
        },
        separators=(",", ":"),
    ).encode()
    data = _frame(WSMsgType.TEXT, delta, mask=None)
    _feed(p.upstream, data)
    if way != "picows-floor":
        assert p.relay.frames_out == 1
        assert len(p.client_sink.written[-1]) >= rate // 25  # header + 20 ms of PCM
    benchmark(_feed, p.upstream, data)
