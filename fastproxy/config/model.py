"""The frozen :class:`Config` the rest of the process reads."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fastproxy.config.table import DEFAULT_UPSTREAM_URL, SETTINGS
from fastproxy.config.values import _dedupe
from fastproxy.protocol.options import SessionOptions


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, ``::1`` and 127.0.0.0/8 (also their IPv4-mapped IPv6 forms)."""
    h = host.strip().strip("[]").lower().rstrip(".")
    if h == "localhost" or h.endswith(".localhost"):
        return True
    try:
        addr = ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def _mask(secret: str | None) -> str:
    return "None" if secret is None else "'***'"


@dataclass(frozen=True, slots=True, repr=False)
class Config:
    """Validated process settings. Build it with :func:`load_config`; direct construction
    (handy in tests) skips validation. ``repr`` masks the API key and the client tokens."""

    api_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    paths: tuple[str, ...] = ("/openai", "/v1/agent/converse")
    upstream_url: str = DEFAULT_UPSTREAM_URL
    upstream_connect_timeout_ms: int = 10000
    ready_timeout_ms: int = 15000
    turn_detection: str = "server_vad"
    greeting: str = "text"
    extra_events: bool = True
    transcription_model: str = "gpt-4o-transcribe"
    transcription_language: str = "en"
    sequencer_timeout_ms: int = 20000
    auth: str = "none"
    auth_tokens: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_sessions: int = 10000
    max_sessions_per_address: int = 0
    max_client_message_bytes: int = 16777216
    max_upstream_message_bytes: int = 16777216
    queue_max_messages: int = 2048
    queue_max_bytes: int = 4194304
    send_buffer_max_bytes: int = 33554432
    drain_timeout_ms: int = 25000
    log_level: str = "info"
    log_format: str = "text"
    metrics: bool = True
    metrics_port: int | None = None
    workers: int = 1
    ping_interval_ms: int = 15000
    ping_timeout_ms: int = 30000
    # Not a setting: whether upstream_url came from a flag or an environment variable.
    upstream_url_explicit: bool = False

    @property
    def use_mock_upstream(self) -> bool:
        """No API key and no upstream URL chosen: ``serve`` runs the built-in mock upstream."""
        return (
            self.api_key is None
            and not self.upstream_url_explicit
            and self.upstream_url == DEFAULT_UPSTREAM_URL
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The API key and every client token: never logged, redacted from upstream text."""
        key = (self.api_key,) if self.api_key else ()
        return _dedupe([*key, *(t for t in self.auth_tokens if t)])

    @property
    def ping_timeouts_s(self) -> tuple[float, float]:
        """picows' auto-ping (idle, reply) timeouts in seconds, the same on both legs. picows
        requires reply <= idle, so a silent peer is dropped after ping_interval +
        min(ping_timeout, ping_interval); ``ping_interval_ms`` 0 turns pings off."""
        idle_s = max(self.ping_interval_ms, 1) / 1000.0
        return idle_s, min(self.ping_timeout_ms / 1000.0, idle_s)

    @property
    def any_origin(self) -> bool:
        return not self.allowed_origins or "*" in self.allowed_origins

    def session_options(self) -> SessionOptions:
        return SessionOptions(
            turn_detection=self.turn_detection,
            greeting=self.greeting,
            extra_events=self.extra_events,
            transcription_model=self.transcription_model,
            transcription_language=self.transcription_language,
            ready_timeout_ms=self.ready_timeout_ms,
            sequencer_timeout_ms=self.sequencer_timeout_ms,
            queue_max_messages=self.queue_max_messages,
            queue_max_bytes=self.queue_max_bytes,
            secrets=self.secrets,
        )

    def describe(self) -> dict[str, object]:
        """Every setting as a loggable mapping; secrets appear only as presence/count."""
        out: dict[str, object] = {}
        for s in SETTINGS:
            value = getattr(self, s.name)
            if s.name == "api_key":
                out["api_key"] = "set" if value else "unset"
            elif s.name == "auth_tokens":
                out["auth_tokens"] = len(value)
            elif isinstance(value, tuple):
                out[s.name] = ",".join(value)
            else:
                out[s.name] = value
        out["use_mock_upstream"] = self.use_mock_upstream
        return out

    def startup_warnings(self) -> list[str]:
        """Messages the process must log at WARNING once logging is set up."""
        warnings: list[str] = []
        if self.use_mock_upstream:
            warnings.append(
                "!!! NO OPENAI API KEY CONFIGURED: serving with the BUILT-IN MOCK UPSTREAM; "
                "no real model is contacted. Set FASTPROXY_OPENAI_API_KEY (or OPENAI_API_KEY, or "
                "--api-key-file) for real use. !!!"
            )
        elif self.api_key is None:
            warnings.append(
                "no API key configured: upstream connections to upstream_url carry no "
                "Authorization header"
            )
        if self.auth == "none" and not is_loopback_host(self.host):
            warnings.append(
                f"auth=none on non-loopback host {self.host!r}: any client that can reach this "
                "port can use the upstream API key"
            )
        if self.auth == "none" and self.auth_tokens:
            warnings.append("auth=none: the configured auth_tokens are ignored")
        if self.send_buffer_max_bytes < self.max_client_message_bytes * 4 // 3 + 65536:
            warnings.append(
                "send_buffer_max_bytes is below 4/3 x max_client_message_bytes: one maximal "
                "client message can overflow the upstream send buffer (§3.4)"
            )
        return warnings

    def __repr__(self) -> str:
        parts = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "api_key":
                parts.append(f"api_key={_mask(value)}")
            elif name == "auth_tokens":
                parts.append(f"auth_tokens=<{len(value)} token(s)>")
            else:
                parts.append(f"{name}={value!r}")
        return f"Config({', '.join(parts)})"

    __str__ = __repr__
