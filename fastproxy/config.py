"""Operator configuration: every setting of PROTOCOL.md Appendix B, resolved and validated once.

This module owns the settings table (``SETTINGS``: name, environment variables, flag, default,
parser), the resolution rule (flag, then environment variable, then its fallback, then default),
and the frozen :class:`Config` that the rest of the process reads. Resolution is pure: the caller
passes ``argv`` and the environment explicitly, so tests never touch ``os.environ``. Every invalid
value raises :class:`ConfigError` whose message names the setting and where the value came from;
values of secrets are never echoed. ``fastproxy.cli`` reuses :func:`add_config_arguments` so the
``serve`` flags and their help text come from the same table.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from fastproxy.protocol.options import SessionOptions

__all__ = [
    "DEFAULT_UPSTREAM_URL",
    "SETTINGS",
    "Config",
    "ConfigError",
    "Setting",
    "add_config_arguments",
    "config_from_values",
    "is_loopback_host",
    "load_config",
]

DEFAULT_UPSTREAM_URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime"
ENV_PREFIX = "FASTPROXY_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_SECRET_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


class ConfigError(Exception):
    """A fatal start-up configuration error. ``str(err)`` names the setting (``err.setting``)."""

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class _Invalid(ValueError):
    """Raised by a value parser; turned into a ConfigError naming the setting and source."""


# --------------------------------------------------------------------------- value parsers


def _text(raw: object) -> str:
    if not isinstance(raw, str):
        raise _Invalid(f"expected a string, got {type(raw).__name__}")
    return raw.strip()


def _int_parser(minimum: int, maximum: int | None = None) -> Callable[[object], int]:
    def parse(raw: object) -> int:
        s = _text(raw)
        if not re.fullmatch(r"[+-]?[0-9]+", s):
            raise _Invalid(f"{s!r} is not an integer")
        value = int(s)
        if value < minimum:
            raise _Invalid(f"{value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            raise _Invalid(f"{value} is above the maximum {maximum}")
        return value

    return parse


_positive = _int_parser(1)
_non_negative = _int_parser(0)
_port = _int_parser(0, 65535)


def _optional_port(raw: object) -> int | None:
    if _text(raw).lower() in ("none", "off"):
        return None
    return _port(raw)


def _bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    s = _text(raw).lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise _Invalid(f"{s!r} is not a boolean (use 1/true/yes/on or 0/false/no/off)")


def _enum_parser(
    *choices: str, aliases: Mapping[str, str] | None = None
) -> Callable[[object], str]:
    table = {c: c for c in choices} | dict(aliases or {})
    accepted = ", ".join([*choices, *(aliases or {})])

    def parse(raw: object) -> str:
        s = _text(raw).lower()
        if s not in table:
            raise _Invalid(f"{s!r} is not one of: {accepted}")
        return table[s]

    return parse


def _word(raw: object) -> str:
    s = _text(raw)
    if not s:
        raise _Invalid("must not be empty")
    if re.search(r"\s", s):
        raise _Invalid(f"{s!r} must not contain whitespace")
    return s


def _host(raw: object) -> str:
    s = _word(raw)
    if s.startswith("[") and s.endswith("]"):  # accept the bracketed IPv6 URL form
        s = s[1:-1]
    if not s:
        raise _Invalid("must not be empty")
    return s


def _split(raw: object) -> list[str]:
    return [part.strip() for part in _text(raw).split(",") if part.strip()]


def _dedupe(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _paths(raw: object) -> tuple[str, ...]:
    items = _split(raw)
    if not items:
        raise _Invalid("at least one path is required")
    for p in items:
        if not p.startswith("/"):
            raise _Invalid(f"{p!r} must start with '/'")
        if re.search(r"[\s?#]", p):
            raise _Invalid(f"{p!r} must not contain whitespace, '?' or '#'")
    return _dedupe(items)


_ORIGIN_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s?#]+")


def _origins(raw: object) -> tuple[str, ...]:
    items = [o.lower() for o in _split(raw)]
    for o in items:
        if o != "*" and not _ORIGIN_RE.fullmatch(o):
            raise _Invalid(f"{o!r} is not '*' or scheme://host[:port]")
    return _dedupe(items)


def _url(raw: object) -> str:
    s = _word(raw)
    m = re.fullmatch(r"(wss?)://([^/?#]+)(.*)", s, flags=re.IGNORECASE)
    if m is None:
        raise _Invalid("must be a ws:// or wss:// URL with a host")
    return s


def _workers(raw: object) -> int:
    if _text(raw).lower() == "auto":
        return _cpu_count()
    return _positive(raw)


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _check_secret(value: str, what: str) -> str:
    if _SECRET_BAD_CHARS.search(value):
        raise _Invalid(f"{what} contains whitespace or control characters")
    return value


def _api_key(raw: object) -> str:
    s = _text(raw)
    if not s:
        raise _Invalid("the API key is empty")
    return _check_secret(s, "the API key")


def _tokens(items: Sequence[str]) -> tuple[str, ...]:
    for t in items:
        _check_secret(t, "a token")
    return _dedupe(items)


def _tokens_from_env(raw: object) -> tuple[str, ...]:
    return _tokens(_split(raw))


def _read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise _Invalid(f"cannot read {path!r}: {reason}") from None


def _api_key_file(raw: object) -> str:
    return _api_key(_read_file(_text(raw)))


def _tokens_file(raw: object) -> tuple[str, ...]:
    lines = [line.strip() for line in _read_file(_text(raw)).splitlines()]
    return _tokens([line for line in lines if line])


# --------------------------------------------------------------------------- the table


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


# --------------------------------------------------------------------------- the object


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


# --------------------------------------------------------------------------- resolution


class _ArgParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per setting; every default is ``None`` meaning "not given"."""
    group = parser.add_argument_group(
        "settings",
        "Precedence: flag, then environment variable, then default. Booleans accept\n"
        "1/true/yes/on and 0/false/no/off. An empty environment variable counts as unset.\n"
        "An invalid value stops the start-up with an error naming the setting.",
    )
    for s in SETTINGS:
        assert s.flag is not None
        default = s.show_default if s.show_default is not None else _show(s.default)
        help_text = f"{s.help} [env {' / '.join(s.env)}; default {default}]"
        if s.boolean:
            group.add_argument(
                s.flag, dest=s.dest, action="store_const", const=True, default=None, help=help_text
            )
            group.add_argument(
                "--no-" + s.flag[2:],
                dest=s.dest,
                action="store_const",
                const=False,
                default=None,
                help=f"disable {s.flag}",
            )
        else:
            metavar = s.metavar or _metavar(s.name)
            group.add_argument(s.flag, dest=s.dest, default=None, metavar=metavar, help=help_text)


_METAVARS = {
    "turn_detection": "MODE",
    "greeting": "MODE",
    "auth": "MODE",
    "log_level": "LEVEL",
    "log_format": "FORMAT",
    "allowed_origins": "ORIGINS",
    "transcription_model": "MODEL",
    "transcription_language": "LANG",
}


def _metavar(name: str) -> str:
    if name in _METAVARS:
        return _METAVARS[name]
    for suffix, metavar in (("_ms", "MS"), ("_bytes", "BYTES"), ("port", "PORT")):
        if name.endswith(suffix):
            return metavar
    return "N" if name.startswith(("max_", "queue_max_")) else name.upper()


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or "empty"
    return "none" if value is None else str(value)


def load_config(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Config:
    """Build the Config from setting flags (``argv``; ``None`` = no flags) and ``environ``.

    Raises ConfigError naming the setting on any invalid value or unknown flag.
    """
    parser = _ArgParser(prog="fastproxy serve", add_help=False, allow_abbrev=False)
    add_config_arguments(parser)
    namespace = parser.parse_args(list(argv or ()))
    return config_from_values(vars(namespace), environ)


def config_from_values(values: Mapping[str, object], environ: Mapping[str, str]) -> Config:
    """Build the Config from already-parsed flag values (keyed by argparse ``dest``; ``None`` or
    absent = not given) and ``environ``."""
    resolved: dict[str, object] = {}
    explicit: set[str] = set()
    for s in SETTINGS:
        value, given = _resolve(s, values, environ)
        resolved[s.name] = value
        if given:
            explicit.add(s.name)

    host = str(resolved["host"])
    if resolved["auth"] is None:
        resolved["auth"] = "none" if is_loopback_host(host) else "token"
    tokens = resolved["auth_tokens"]
    if resolved["auth"] == "token" and not tokens:
        how = "auth=token" if "auth" in explicit else f"auth defaults to token on host {host!r}"
        raise ConfigError(
            f"auth: {how} but no client token is configured; set FASTPROXY_AUTH_TOKENS or "
            "--auth-tokens-file (or --auth none explicitly, which is unsafe off loopback)",
            "auth",
        )
    port, metrics_port = resolved["port"], resolved["metrics_port"]
    if metrics_port is not None and metrics_port != 0 and metrics_port == port:
        raise ConfigError(
            f"metrics_port: {metrics_port} is the same as port; choose another port or none",
            "metrics_port",
        )
    return Config(**resolved, upstream_url_explicit="upstream_url" in explicit)  # type: ignore[arg-type]


def _resolve(
    s: Setting, values: Mapping[str, object], environ: Mapping[str, str]
) -> tuple[object, bool]:
    raw = values.get(s.dest)
    if raw is not None:
        return _parse(s, s.parse_flag or s.parse, raw, str(s.flag)), True
    for var in s.env:
        env_raw = environ.get(var)
        if env_raw is not None and env_raw.strip():
            return _parse(s, s.parse, env_raw, var), True
    return s.default, False


def _parse(s: Setting, parse: Callable[[object], object], raw: object, source: str) -> object:
    try:
        return parse(raw)
    except _Invalid as exc:
        raise ConfigError(f"invalid {s.name} (from {source}): {exc}", s.name) from None
