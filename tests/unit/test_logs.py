"""fastproxy.logs: text and json formats (§12.2), secret redaction (§11.5), ConnectionLogger,
and trace ids (§12.1, P-03)."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import msgspec
import pytest

from fastproxy import logs
from fastproxy.logs import (
    REDACTED,
    ConnectionLogger,
    JsonFormatter,
    Redactor,
    TextFormatter,
    redact,
    setup_logging,
    trace_id_from_query,
)

KEY = "sk-test-SECRET"
TOKEN = "tok-SECRET"
CID = "4b0e8f5e-2d1c-4a8e-9a55-0f3c2b7d9e11"
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Route the process logging into a buffer; restore the root logger afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_factory = logging.getLogRecordFactory()
    buf = io.StringIO()
    yield buf
    for h in list(root.handlers):
        if h not in saved_handlers:
            root.removeHandler(h)
    root.setLevel(saved_level)
    logging.setLogRecordFactory(saved_factory)
    logs._redactor = Redactor()


def lines(buf: io.StringIO) -> list[str]:
    return [line for line in buf.getvalue().splitlines() if line]


def json_lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [msgspec.json.decode(line) for line in lines(buf)]


# ------------------------------------------------------------------ setup


def test_invalid_level_or_format() -> None:
    with pytest.raises(ValueError, match="log_level"):
        setup_logging("verbose", "text", ())
    with pytest.raises(ValueError, match="log_format"):
        setup_logging("info", "xml", ())


def test_level_filtering_and_warn_alias(stream: io.StringIO) -> None:
    setup_logging("warn", "text", (), stream=stream)
    log = logging.getLogger("fastproxy.test")
    log.info("hidden")
    log.warning("shown")
    assert [line.split(" ", 3)[3] for line in lines(stream)] == ["shown"]


def test_setup_is_idempotent(stream: io.StringIO) -> None:
    setup_logging("info", "text", (), stream=stream)
    setup_logging("info", "json", (), stream=stream)
    logging.getLogger("fastproxy.test").info("once")
    assert len(lines(stream)) == 1
    assert json_lines(stream)[0]["message"] == "once"


# ------------------------------------------------------------------ text


def test_text_format(stream: io.StringIO) -> None:
    setup_logging("debug", "text", (), stream=stream)
    log = ConnectionLogger("fastproxy.conn", CID, "abc-123")
    log.info(
        "upstream closed",
        {"upstream.close_code": 1011, "upstream.close_reason": "boom now", "flag": True},
        direction="upstream_in",
        message_type="close",
    )
    (line,) = lines(stream)
    time_, level, logger, rest = line.split(" ", 3)
    assert ISO_UTC.fullmatch(time_)
    assert (level, logger) == ("INFO", "fastproxy.conn")
    assert rest == (
        f"upstream closed connection_id={CID} trace_id=abc-123 direction=upstream_in "
        'message_type=close upstream.close_code=1011 upstream.close_reason="boom now" flag=true'
    )


def test_text_is_one_line(stream: io.StringIO) -> None:
    setup_logging("info", "text", (), stream=stream)
    logging.getLogger("x").info("a\nb\r\nc", extra={"v": "line1\nline2"})
    (line,) = lines(stream)
    assert "a\\nb\\r\\nc" in line
    assert 'v="line1\\nline2"' in line


def test_text_exception_follows(stream: io.StringIO) -> None:
    setup_logging("info", "text", (), stream=stream)
    try:
        raise RuntimeError("kaput")
    except RuntimeError:
        logging.getLogger("x").exception("failed")
    out = stream.getvalue()
    assert out.splitlines()[0].endswith("failed")
    assert "RuntimeError: kaput" in out


# ------------------------------------------------------------------ json


def test_json_format(stream: io.StringIO) -> None:
    setup_logging("debug", "json", (), stream=stream)
    log = ConnectionLogger(logging.getLogger("fastproxy.conn"), CID, "abc-123")
    log.debug(
        "sent",
        {"error.code": "invalid_value", "item_id": "fp_1"},
        direction="client_out",
        message_type="Error",
        response_id="resp_1",
    )
    log.info("plain")
    first, second = json_lines(stream)
    assert list(first)[:8] == [
        "time",
        "level",
        "logger",
        "message",
        "connection_id",
        "trace_id",
        "direction",
        "message_type",
    ]
    assert ISO_UTC.fullmatch(str(first["time"]))
    assert first == {
        "time": first["time"],
        "level": "debug",
        "logger": "fastproxy.conn",
        "message": "sent",
        "connection_id": CID,
        "trace_id": "abc-123",
        "direction": "client_out",
        "message_type": "Error",
        "error.code": "invalid_value",
        "item_id": "fp_1",
        "response_id": "resp_1",
    }
    assert second["direction"] == "internal"
    assert second["message_type"] is None
    assert second["level"] == "info"


def test_json_plain_logger_and_extra(stream: io.StringIO) -> None:
    setup_logging("info", "json", (), stream=stream)
    logging.getLogger("fastproxy").warning(
        "%s starting", "fastproxy", extra={"port": 8080, "obj": object(), "time": "clash"}
    )
    (rec,) = json_lines(stream)
    assert rec["message"] == "fastproxy starting"
    assert rec["level"] == "warning"
    assert rec["port"] == 8080
    assert str(rec["obj"]).startswith("<object object")
    assert rec["extra.time"] == "clash"
    assert "connection_id" not in rec


def test_json_exception(stream: io.StringIO) -> None:
    setup_logging("info", "json", (), stream=stream)
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("x").exception("failed")
    (rec,) = json_lines(stream)
    assert "ValueError: bad" in str(rec["exc_info"])


def test_bytes_are_logged_only_as_sizes(stream: io.StringIO) -> None:
    setup_logging("debug", "json", (), stream=stream)
    ConnectionLogger("x", CID).debug(
        "audio", direction="client_in", message_type="audio", payload=b"\x00" * 960
    )
    assert json_lines(stream)[0]["payload"] == "<960 bytes>"


# ------------------------------------------------------------------ redaction


def test_redact_helper() -> None:
    assert redact(f"Incorrect API key provided: {KEY}", [KEY, TOKEN]) == (
        "Incorrect API key provided: [redacted]"
    )
    assert redact(f"{TOKEN}{TOKEN} {KEY}", (KEY, TOKEN)) == f"{REDACTED}{REDACTED} {REDACTED}"
    assert redact("nothing here", [KEY]) == "nothing here"
    assert redact("abc", ["", ""]) == "abc"  # empty secrets are ignored
    assert redact("abc", []) == "abc"
    # Longest first: a secret containing another is redacted whole.
    assert redact("sk-12345", ["sk-1", "sk-12345"]) == REDACTED


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_redaction_in_message_and_fields(stream: io.StringIO, fmt: str) -> None:
    setup_logging("debug", fmt, [KEY, TOKEN], stream=stream)
    log = ConnectionLogger("fastproxy.conn", CID)
    log.error(
        f"upstream error: Incorrect API key provided: {KEY}",
        {"error.message": f"key {KEY}", "authorization": f"Token {TOKEN}"},
        direction="upstream_in",
        message_type="error",
    )
    plain = logging.getLogger("fastproxy.other")
    plain.warning("header %s", f"Token {TOKEN}", extra={"k": KEY, "nested": {"a": [KEY]}})
    try:
        raise RuntimeError(f"failed with {KEY}")
    except RuntimeError:
        plain.exception("boom")
    out = stream.getvalue()
    assert "SECRET" not in out
    assert out.count(REDACTED) >= 7
    if fmt == "json":
        recs = json_lines(stream)
        assert recs[0]["message"] == f"upstream error: Incorrect API key provided: {REDACTED}"
        assert recs[0]["error.message"] == f"key {REDACTED}"
        assert recs[1]["nested"] == {"a": [REDACTED]}


def test_redaction_of_json_escaped_secret(stream: io.StringIO) -> None:
    odd = 'se"cr\\et'  # setup_logging accepts any secret, even ones JSON must escape
    setup_logging("info", "json", [odd], stream=stream)
    logging.getLogger("x").info("v", extra={"f": f"<{odd}>"})
    assert json_lines(stream)[0]["f"] == f"<{REDACTED}>"


def test_records_seen_by_other_handlers_are_redacted(
    stream: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    setup_logging("debug", "text", [KEY, TOKEN], stream=stream)
    caplog.set_level(logging.DEBUG)
    ConnectionLogger("fastproxy.conn", CID).info(f"msg {KEY}", {"f": f"v {TOKEN}"})
    logging.getLogger("fastproxy.plain").info("arg %s", TOKEN)
    assert "SECRET" not in caplog.text
    for rec in caplog.records:
        assert "SECRET" not in rec.getMessage()
        assert "SECRET" not in str(rec.__dict__.get("f", ""))


def test_formatter_with_fixed_redactor() -> None:
    rec = logging.LogRecord("n", logging.INFO, "", 0, "x %s", (KEY,), None)
    assert KEY not in TextFormatter(Redactor([KEY])).format(rec)
    assert KEY not in JsonFormatter(Redactor([KEY])).format(rec)


# ------------------------------------------------------------------ ConnectionLogger


def test_connection_logger_binds_ids_and_defaults_trace_to_connection(
    stream: io.StringIO,
) -> None:
    setup_logging("info", "json", (), stream=stream)
    ConnectionLogger("c", CID, "abc-123").info("a")
    ConnectionLogger("c", CID).info("b")
    ConnectionLogger("c", CID, "").info("c")
    a, b, c = json_lines(stream)
    assert (a["connection_id"], a["trace_id"]) == (CID, "abc-123")
    assert (b["connection_id"], b["trace_id"]) == (CID, CID)
    assert c["trace_id"] == CID


def test_debug_guard_is_cached(stream: io.StringIO) -> None:
    setup_logging("info", "text", (), stream=stream)
    log = ConnectionLogger("fastproxy.conn", CID)
    assert log.debug_enabled is False and log.info_enabled is True
    log.debug("hidden")
    assert lines(stream) == []
    setup_logging("debug", "text", (), stream=stream)
    assert log.debug_enabled is False  # cached until refreshed
    log.refresh()
    assert log.debug_enabled is True
    log.debug("shown")
    assert len(lines(stream)) == 1


def test_reserved_field_names_are_suffixed(stream: io.StringIO) -> None:
    setup_logging("info", "json", (), stream=stream)
    ConnectionLogger("c", CID).info("fn", [("name", "get_time"), ("msg", "m")], args="x")
    (rec,) = json_lines(stream)
    assert (rec["name_"], rec["msg_"], rec["args_"]) == ("get_time", "m", "x")
    assert rec["message"] == "fn"


def test_log_named_for_protocol_log_actions(stream: io.StringIO) -> None:
    setup_logging("debug", "json", (), stream=stream)
    log = ConnectionLogger("c", CID)
    log.log_named("WARNING", "sequencer timeout", (("direction", "internal"),))
    log.log_named("warn", "w2")
    log.log_named("bogus", "falls back to info")
    recs = json_lines(stream)
    assert [r["level"] for r in recs] == ["warning", "warning", "info"]


def test_connection_logger_exception(stream: io.StringIO) -> None:
    setup_logging("info", "json", (), stream=stream)
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        ConnectionLogger("c", CID).exception("oops", direction="internal")
    (rec,) = json_lines(stream)
    assert rec["level"] == "error" and "ZeroDivisionError" in str(rec["exc_info"])


# ------------------------------------------------------------------ trace id (§12.1)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("traceId=abc-123", "abc-123"),  # P-03
        ("?traceId=abc-123", "abc-123"),
        ("", CID),  # P-03 client B: no traceId
        ("foo=1", CID),
        ("traceId=", CID),
        ("traceId=%20%20", CID),
        ("traceId=%20%20t1%20", "t1"),
        ("traceId=a%20b", "ab"),
        ("traceId=a+b", "ab"),
        ("traceId=t%C3%A9st%09x", "tstx"),
        ("traceId=%00%7F%1F", CID),
        ("x=1&traceId=t1&traceId=t2", "t1"),
        ("traceid=t1", CID),  # the parameter name is case-sensitive
        ("traceId=" + "a" * 200, "a" * 128),
        ("traceId=" + "%20" + "b" * 130, "b" * 128),
        ("traceId=~!%23$", "~!#$"),
    ],
)
def test_trace_id(query: str, expected: str) -> None:
    assert trace_id_from_query(query, CID) == expected
