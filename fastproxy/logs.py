"""Process-wide logging: formats, secret redaction, per-connection loggers, trace ids.

:func:`setup_logging` installs one stderr handler on the root logger with either the ``text``
format (``time LEVEL logger message key=value ...``) or the ``json`` format (one msgspec-encoded
object per line), PROTOCOL.md §12.2. Secrets (the API key and every client token, §11.5) are
replaced by ``[redacted]`` three times over, so a caller that forgets cannot leak them: in the
structured fields a :class:`ConnectionLogger` attaches, in ``LogRecord.getMessage()`` (so other
handlers such as pytest's ``caplog`` see redacted text too), and in the final formatted line.

Hot path: :class:`ConnectionLogger` caches ``isEnabledFor(DEBUG)`` in ``debug_enabled`` when it is
created; guard debug calls with ``if log.debug_enabled:`` so a disabled record costs one attribute
read. The cache is refreshed by :meth:`ConnectionLogger.refresh`; the level is set once at start-up.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import IO, Any, Final
from urllib.parse import parse_qsl

import msgspec

__all__ = [
    "LEVELS",
    "REDACTED",
    "ConnectionLogger",
    "JsonFormatter",
    "Redactor",
    "TextFormatter",
    "redact",
    "setup_logging",
    "trace_id_from_query",
]

REDACTED: Final = "[redacted]"
LEVELS: Final[Mapping[str, int]] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
FORMATS: Final = ("text", "json")
TRACE_ID_MAX: Final = 128
# Connection fields come first, in this order, in both formats (§12.2).
CONNECTION_FIELDS: Final = ("connection_id", "trace_id", "direction", "message_type")
_CORE_JSON_KEYS: Final = frozenset({"time", "level", "logger", "message"})

# Attributes every LogRecord has; anything else in record.__dict__ came from ``extra=``.
_STANDARD_ATTRS: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


# --------------------------------------------------------------------------- redaction


class Redactor:
    """Replaces every secret (and its JSON-escaped form) by ``[redacted]``; empty ones ignored."""

    __slots__ = ("_pattern", "active", "secrets")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: tuple[str, ...] = tuple(dict.fromkeys(s for s in secrets if s))
        variants: set[str] = set(self.secrets)
        for s in self.secrets:
            variants.add(msgspec.json.encode(s).decode()[1:-1])
        ordered = sorted(variants, key=len, reverse=True)  # longest first: no partial leaks
        self.active = bool(ordered)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)

    def __repr__(self) -> str:
        return f"Redactor(<{len(self.secrets)} secret(s)>)"


@lru_cache(maxsize=32)
def _redactor_for(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every occurrence of every non-empty secret replaced by ``[redacted]``."""
    return _redactor_for(tuple(secrets))(text)


# The process-wide redactor, replaced by setup_logging(); read at emit time.
_redactor = Redactor()


def current_redactor() -> Redactor:
    return _redactor


class _RedactingLogRecord(logging.LogRecord):
    """A LogRecord whose rendered message is redacted, whatever handler renders it."""

    def getMessage(self) -> str:
        return _redactor(super().getMessage())


# --------------------------------------------------------------------------- formatting


class _UtcClock:
    """ISO 8601 UTC timestamps with microseconds; the seconds part is cached."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: tuple[int, str] = (-1, "")

    def __call__(self, created: float) -> str:
        sec = int(created)
        cached_sec, prefix = self._cache
        if sec != cached_sec:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            self._cache = (sec, prefix)
        return f"{prefix}.{int((created - sec) * 1_000_000):06d}Z"


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of ``record`` (its ``extra=``), connection fields first."""
    d = record.__dict__
    out: dict[str, Any] = {k: d[k] for k in CONNECTION_FIELDS if k in d}
    for k, v in d.items():
        if k not in _STANDARD_ATTRS and k not in out:
            out[k] = v
    return out


def _loggable(value: Any) -> Any:
    # Defence in depth for §11.5/§12.2: raw bytes (audio) are never logged, only their size.
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    return value


_BARE = re.compile(r"[^\s\"=\\]+")
_json_str = msgspec.json.Encoder().encode


def _text_value(value: Any) -> str:
    value = _loggable(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    s = value if isinstance(value, str) else str(value)
    return s if _BARE.fullmatch(s) else _json_str(s).decode()


class _BaseFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._clock = _UtcClock()
        self._fixed_redactor = redactor

    def _redact(self, line: str) -> str:
        r = self._fixed_redactor if self._fixed_redactor is not None else _redactor
        return r(line)

    def _exc(self, record: logging.LogRecord) -> str | None:
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        parts = [p for p in (record.exc_text, record.stack_info) if p]
        return "\n".join(parts) if parts else None


class TextFormatter(_BaseFormatter):
    """``2025-01-02T03:04:05.123456Z INFO logger message key=value ...`` on one line (a
    traceback, if any, follows on the next lines). Newlines in the message are escaped."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().replace("\r", "\\r").replace("\n", "\\n")
        parts = [self._clock(record.created), record.levelname, record.name, message]
        for k, v in record_fields(record).items():
            parts.append(f"{k}={_text_value(v)}")
        line = " ".join(parts)
        exc = self._exc(record)
        if exc:
            line = f"{line}\n{exc}"
        return self._redact(line)


class JsonFormatter(_BaseFormatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, then the
    structured fields (``connection_id``, ``trace_id``, ``direction``, ``message_type``, ...),
    then ``exc_info`` if any. A field named like a core key is emitted as ``extra.<name>``."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__(redactor)
        self._encode = msgspec.json.Encoder(enc_hook=str).encode

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "time": self._clock(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for k, v in record_fields(record).items():
            obj["extra." + k if k in _CORE_JSON_KEYS else k] = _loggable(v)
        exc = self._exc(record)
        if exc:
            obj["exc_info"] = exc
        try:
            line = self._encode(obj).decode()
        except (TypeError, ValueError, OverflowError):  # e.g. an unencodable dict key
            obj = {
                k: v if isinstance(v, str | int | float | bool | None) else str(v)
                for k, v in obj.items()
            }
            line = self._encode(obj).decode()
        return self._redact(line)


# --------------------------------------------------------------------------- setup

_HANDLER_MARK = "_fastproxy_handler"


def setup_logging(
    level: str, fmt: str, secrets: Sequence[str] = (), *, stream: IO[str] | None = None
) -> None:
    """Configure the root logger for the whole process (idempotent; call again to reconfigure).

    ``level``: debug, info, warning (alias warn) or error; ``fmt``: text or json; ``secrets``:
    strings that must never appear in any log line. Writes to ``stream`` (default stderr).
    """
    global _redactor
    lvl = LEVELS.get(level.strip().lower())
    if lvl is None:
        raise ValueError(f"log_level: unknown level {level!r}")
    fmt_name = fmt.strip().lower()
    if fmt_name not in FORMATS:
        raise ValueError(f"log_format: unknown format {fmt!r}")

    _redactor = Redactor(secrets)
    if logging.getLogRecordFactory() is logging.LogRecord:
        logging.setLogRecordFactory(_RedactingLogRecord)

    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _HANDLER_MARK, False):
            root.removeHandler(h)
            h.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(JsonFormatter() if fmt_name == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(lvl)
    logging.captureWarnings(True)


# --------------------------------------------------------------------------- per connection

_RESERVED_EXTRA: Final = _STANDARD_ATTRS | {"exc_info", "stack_info", "extra"}
FieldsArg = Mapping[str, object] | Iterable[tuple[str, object]] | None


class ConnectionLogger:
    """Binds ``connection_id`` and ``trace_id`` to every record; takes structured fields.

    ``log.info("upstream closed", {"upstream.close_code": 1011}, direction="upstream_in")`` or
    with keywords: ``log.debug("sent", direction="client_out", message_type="Welcome")``.
    ``direction`` defaults to ``internal``; ``message_type`` is ``None`` unless given. String
    field values are redacted. Field names that clash with LogRecord attributes get a ``_``
    suffix (``name`` -> ``name_``). Guard hot-path debug calls with ``if log.debug_enabled``.
    """

    __slots__ = ("connection_id", "debug_enabled", "info_enabled", "logger", "trace_id")

    def __init__(
        self,
        logger: logging.Logger | str,
        connection_id: str,
        trace_id: str | None = None,
    ) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.connection_id = connection_id
        self.trace_id = trace_id or connection_id
        self.debug_enabled = False
        self.info_enabled = False
        self.refresh()

    def refresh(self) -> None:
        """Re-read the logger's effective level (after a runtime level change)."""
        self.debug_enabled = self.logger.isEnabledFor(logging.DEBUG)
        self.info_enabled = self.logger.isEnabledFor(logging.INFO)

    def log(
        self,
        level: int,
        msg: str,
        fields: FieldsArg = None,
        /,
        *,
        direction: str = "internal",
        message_type: str | None = None,
        exc_info: Any = None,
        **kw: object,
    ) -> None:
        if not self.logger.isEnabledFor(level):
            return
        extra: dict[str, object] = {
            "connection_id": self.connection_id,
            "trace_id": self.trace_id,
            "direction": direction,
            "message_type": message_type,
        }
        redactor = _redactor
        if fields:
            items = fields.items() if isinstance(fields, Mapping) else fields
            for k, v in items:
                self._put(extra, k, v, redactor)
        for k, v in kw.items():
            self._put(extra, k, v, redactor)
        self.logger.log(level, msg, exc_info=exc_info, extra=extra)

    @staticmethod
    def _put(extra: dict[str, object], key: str, value: object, redactor: Redactor) -> None:
        if key in _RESERVED_EXTRA:
            key += "_"
        if redactor.active and isinstance(value, str):
            value = redactor(value)
        extra[key] = value

    def debug(self, msg: str, fields: FieldsArg = None, /, **kw: Any) -> None:
        if self.debug_enabled:
            self.log(logging.DEBUG, msg, fields, **kw)

    def info(self, msg: str, fields: FieldsArg = None, /, **kw: Any) -> None:
        self.log(logging.INFO, msg, fields, **kw)

    def warning(self, msg: str, fields: FieldsArg = None, /, **kw: Any) -> None:
        self.log(logging.WARNING, msg, fields, **kw)

    def error(self, msg: str, fields: FieldsArg = None, /, **kw: Any) -> None:
        self.log(logging.ERROR, msg, fields, **kw)

    def exception(self, msg: str, fields: FieldsArg = None, /, **kw: Any) -> None:
        kw.setdefault("exc_info", True)
        self.log(logging.ERROR, msg, fields, **kw)

    def log_named(self, level_name: str, msg: str, fields: FieldsArg = None) -> None:
        """Log at a level given by name (``"info"``, ``"WARNING"`` ...), e.g. for a protocol
        ``Log`` action: ``log.log_named(a.level, a.message, a.fields)``. Unknown names → INFO."""
        self.log(LEVELS.get(level_name.lower(), logging.INFO), msg, fields)

    def __repr__(self) -> str:
        return f"ConnectionLogger({self.logger.name!r}, {self.connection_id!r}, {self.trace_id!r})"


# --------------------------------------------------------------------------- trace id

_NOT_PRINTABLE = re.compile(r"[^\x21-\x7e]+")


def trace_id_from_query(query: str, connection_id: str) -> str:
    """PROTOCOL.md §12.1: the ``traceId`` query parameter (percent-decoded, trimmed, characters
    outside 0x21–0x7E removed, truncated to 128) if non-empty, else ``connection_id``.

    ``query`` is the part after ``?`` (a leading ``?`` is tolerated). The first ``traceId``
    parameter counts.
    """
    if "traceId" not in query:
        return connection_id
    if query.startswith("?"):
        query = query[1:]
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "traceId":
            cleaned = _NOT_PRINTABLE.sub("", value.strip())[:TRACE_ID_MAX]
            return cleaned or connection_id
    return connection_id
