"""The settings table: every setting of PROTOCOL.md Appendix B (plus the process-level extras)
with its flag, environment variables, default and parser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastproxy.config.values import (
    _api_key,
    _api_key_file,
    _bool,
    _enum_parser,
    _host,
    _non_negative,
    _optional_port,
    _origins,
    _paths,
    _port,
    _positive,
    _tokens_file,
    _tokens_from_env,
    _url,
    _word,
    _workers,
)

DEFAULT_UPSTREAM_URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime"
ENV_PREFIX = "FASTPROXY_"


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of Appendix B (plus the process-level extras)."""

    name: str
    help: str
    default: object
    parse: Callable[[object], object]
    env: tuple[str, ...] = ()  # primary variable first, then fallbacks
    flag: str | None = None  # "--port"; for file-backed secrets the flag takes a path
    parse_flag: Callable[[object], object] | None = None  # when the flag differs (files)
    metavar: str | None = None
    boolean: bool = False  # --x / --no-x
    secret: bool = False
    show_default: str | None = None

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_") if self.flag else self.name


def _s(
    name: str,
    help: str,
    default: object,
    parse: Callable[[object], object],
    *,
    fallback: str | None = None,
    **kw: object,
) -> Setting:
    env = (ENV_PREFIX + name.upper(),) + ((fallback,) if fallback else ())
    flag = kw.pop("flag", "--" + name.replace("_", "-"))
    return Setting(name, help, default, parse, env=env, flag=flag, **kw)  # type: ignore[arg-type]


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "api_key",
        "file holding the OpenAI API key (content stripped); the key is never logged",
        None,
        _api_key,
        env=("FASTPROXY_OPENAI_API_KEY", "OPENAI_API_KEY"),
        flag="--api-key-file",
        parse_flag=_api_key_file,
        metavar="PATH",
        secret=True,
        show_default="none: run the built-in mock upstream",
    ),
    _s("host", "listen address", "127.0.0.1", _host),
    _s("port", "listen port (0 = any free port)", 8080, _port),
    _s(
        "paths",
        "comma-separated WebSocket paths, all equivalent",
        ("/openai", "/v1/agent/converse"),
        _paths,
        show_default="/openai,/v1/agent/converse",
    ),
    _s(
        "upstream_url",
        "OpenAI Realtime WebSocket URL",
        DEFAULT_UPSTREAM_URL,
        _url,
        fallback="OPENAI_REALTIME_URL",
        metavar="URL",
    ),
    _s("upstream_connect_timeout_ms", "upstream handshake timeout", 10000, _positive),
    _s("ready_timeout_ms", "time allowed for the first session.update answer", 15000, _positive),
    _s(
        "turn_detection",
        "server_vad, semantic_vad or manual",
        "server_vad",
        _enum_parser("server_vad", "semantic_vad", "manual"),
    ),
    _s("greeting", "text, spoken or off", "text", _enum_parser("text", "spoken", "off")),
    _s(
        "extra_events",
        "send Transcript and UtteranceEnd events",
        True,
        _bool,
        boolean=True,
        show_default="on",
    ),
    _s("transcription_model", "input transcription model", "gpt-4o-transcribe", _word),
    _s("transcription_language", "input transcription language", "en", _word),
    _s("sequencer_timeout_ms", "response sequencer safety timer", 20000, _positive),
    _s(
        "auth",
        "client authentication: none or token",
        None,
        _enum_parser("none", "token"),
        show_default="none on a loopback host, else token",
    ),
    Setting(
        "auth_tokens",
        "file of accepted client tokens, one per line (env: comma-separated)",
        (),
        _tokens_from_env,
        env=("FASTPROXY_AUTH_TOKENS",),
        flag="--auth-tokens-file",
        parse_flag=_tokens_file,
        metavar="PATH",
        secret=True,
        show_default="none",
    ),
    _s(
        "allowed_origins",
        "comma-separated scheme://host[:port] Origin allowlist ('*' = any)",
        (),
        _origins,
        show_default="empty: any origin",
    ),
    _s("max_sessions", "open session pairs per process", 10000, _positive),
    _s("max_sessions_per_address", "open pairs per client IP (0 = unlimited)", 0, _non_negative),
    _s("max_client_message_bytes", "largest client message", 16777216, _positive),
    _s("max_upstream_message_bytes", "largest upstream message", 16777216, _positive),
    _s("queue_max_messages", "held queue / sequencer FIFO bound (messages)", 2048, _positive),
    _s("queue_max_bytes", "held queue bound (payload bytes)", 4194304, _positive),
    _s("send_buffer_max_bytes", "per-leg send buffer bound", 33554432, _positive),
    _s("drain_timeout_ms", "time given to open sessions after SIGTERM", 25000, _non_negative),
    _s(
        "log_level",
        "debug, info, warning (alias warn) or error",
        "info",
        _enum_parser("debug", "info", "warning", "error", aliases={"warn": "warning"}),
        fallback="LOG_LEVEL",
    ),
    _s(
        "log_format",
        "text or json (one JSON object per line)",
        "text",
        _enum_parser("text", "json"),
    ),
    _s(
        "metrics",
        "export Prometheus metrics (off only to measure their cost)",
        True,
        _bool,
        boolean=True,
        show_default="on",
    ),
    _s(
        "metrics_port",
        "serve Prometheus /metrics on this extra port too ('none' = off)",
        None,
        _optional_port,
        show_default="none",
    ),
    _s(
        "workers",
        "worker processes sharing the port ('auto' = CPU count)",
        1,
        _workers,
        metavar="N|auto",
    ),
    _s("ping_interval_ms", "WebSocket ping interval (0 = no pings)", 15000, _non_negative),
    _s("ping_timeout_ms", "close a leg whose ping is unanswered this long", 30000, _positive),
)

_BY_NAME = {s.name: s for s in SETTINGS}
