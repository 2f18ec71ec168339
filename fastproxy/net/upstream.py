"""Opening the upstream leg: one ``ws_connect`` to the OpenAI Realtime URL (PROTOCOL.md §3.2).

TLS for ``wss://`` (the system trust store), ``Authorization: Bearer <key>`` and no
``OpenAI-Beta`` header (U1), one overall connect timeout covering TCP, TLS and the HTTP upgrade
(U2), and an explicit maximum message size (W7). Failures become ``UpstreamConnectError`` with a
reason that names the HTTP status or the failure and never contains the key.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from typing import TYPE_CHECKING

from picows import WSHandshakeError, WSTransport, ws_connect

if TYPE_CHECKING:
    from fastproxy.config import Config
    from fastproxy.net.relay import Relay

# Initial read buffer per upstream connection: picows' minimum (it allocates max(this, 2048)).
# picows doubles it when a message needs more (a real 40 ms delta is ~3.5 KiB: one or two
# doublings on the first one) and keeps it, so only idle sessions stay this small.
UPSTREAM_READ_BUFFER = 2 * 1024


class UpstreamConnectError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """One context per process: building one loads the whole CA store (milliseconds, memory)."""
    return ssl.create_default_context()


# picows' logger for upstream legs: an adapter, so picows builds no child Logger per connection
_PICOWS_LOGGER = logging.LoggerAdapter(logging.getLogger("picows.upstream"))


async def connect(config: Config, relay: Relay, ssl_context: ssl.SSLContext | None) -> WSTransport:
    """Connect the relay's upstream listener; its ``on_ws_connected`` reports the open."""
    timeout_s = config.upstream_connect_timeout_ms / 1000.0
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    secure = config.upstream_url.startswith("wss://")
    # The client leg's liveness rule: a silent upstream is dropped (then Error upstream_closed).
    ping_idle_s, ping_reply_s = config.ping_timeouts_s
    try:
        async with asyncio.timeout(timeout_s):
            transport, _ = await ws_connect(
                lambda: relay.upstream_listener,
                config.upstream_url,
                ssl_context=(ssl_context or default_ssl_context()) if secure else None,
                extra_headers=headers,
                websocket_handshake_timeout=timeout_s,
                max_frame_size=config.max_upstream_message_bytes,
                read_buffer_init_size=UPSTREAM_READ_BUFFER,
                logger_name=_PICOWS_LOGGER,
                max_redirects=0,
                enable_auto_ping=config.ping_interval_ms > 0,
                auto_ping_idle_timeout=ping_idle_s,
                auto_ping_reply_timeout=ping_reply_s,
                # Plain ws:// (loopback, sidecars): uvloop's own transport costs ~5 KiB less per
                # session and ~100 µs less per setup than aiofastnet's; wss:// keeps picows'
                # default (aiofastnet's TLS when installed).
                use_aiofastnet=None if secure else False,
            )
    except TimeoutError:
        raise UpstreamConnectError(
            f"timeout after {config.upstream_connect_timeout_ms} ms"
        ) from None
    except WSHandshakeError as exc:
        status = getattr(exc.response, "status", None)
        if status is not None:
            raise UpstreamConnectError(f"HTTP {int(status)} {status.phrase}") from None
        raise UpstreamConnectError(f"handshake failed: {type(exc).__name__}") from None
    except ssl.SSLError as exc:
        raise UpstreamConnectError(f"TLS failed: {exc.reason or type(exc).__name__}") from None
    except OSError as exc:
        raise UpstreamConnectError(
            f"connection failed: {exc.strerror or type(exc).__name__}"
        ) from None
    return transport
