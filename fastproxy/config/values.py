"""Appendix B value parsers, and the errors of configuration.

Each parser takes a raw value (a flag's string, an environment variable, or an already typed
value from code) and returns the typed value or raises ``_Invalid``; ``fastproxy.config`` turns
that into a :class:`ConfigError` naming the setting and where the value came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence

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
