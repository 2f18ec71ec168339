"""fastproxy.config: every Appendix B setting (default, env, flag, precedence, validation),
the §11.1 auth defaults, secret files and masking, and the mock-upstream switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastproxy.config import (
    DEFAULT_UPSTREAM_URL,
    SETTINGS,
    Config,
    ConfigError,
    is_loopback_host,
    load_config,
)
from fastproxy.protocol.options import SessionOptions

# name, flag, env, default, (raw value, parsed value), invalid raw value
CASES: list[tuple[str, str, str, object, tuple[str, object], str]] = [
    ("host", "--host", "FASTPROXY_HOST", "127.0.0.1", ("::1", "::1"), "two words"),
    ("port", "--port", "FASTPROXY_PORT", 8080, ("9001", 9001), "65536"),
    (
        "paths",
        "--paths",
        "FASTPROXY_PATHS",
        ("/openai", "/v1/agent/converse"),
        (" /a , /b/c ,", ("/a", "/b/c")),
        "/a,b",
    ),
    (
        "upstream_url",
        "--upstream-url",
        "FASTPROXY_UPSTREAM_URL",
        DEFAULT_UPSTREAM_URL,
        ("ws://127.0.0.1:9000/", "ws://127.0.0.1:9000/"),
        "http://example.com",
    ),
    (
        "upstream_connect_timeout_ms",
        "--upstream-connect-timeout-ms",
        "FASTPROXY_UPSTREAM_CONNECT_TIMEOUT_MS",
        10000,
        ("500", 500),
        "0",
    ),
    ("ready_timeout_ms", "--ready-timeout-ms", "FASTPROXY_READY_TIMEOUT_MS", 15000, ("1", 1), "x"),
    (
        "turn_detection",
        "--turn-detection",
        "FASTPROXY_TURN_DETECTION",
        "server_vad",
        ("Manual", "manual"),
        "client_vad",
    ),
    ("greeting", "--greeting", "FASTPROXY_GREETING", "text", ("spoken", "spoken"), "loud"),
    (
        "transcription_model",
        "--transcription-model",
        "FASTPROXY_TRANSCRIPTION_MODEL",
        "gpt-4o-transcribe",
        ("whisper-1", "whisper-1"),
        "two words",
    ),
    (
        "transcription_language",
        "--transcription-language",
        "FASTPROXY_TRANSCRIPTION_LANGUAGE",
        "en",
        ("de", "de"),
        "e n",
    ),
    (
        "sequencer_timeout_ms",
        "--sequencer-timeout-ms",
        "FASTPROXY_SEQUENCER_TIMEOUT_MS",
        20000,
        ("100", 100),
        "-5",
    ),
    ("auth", "--auth", "FASTPROXY_AUTH", "none", ("NONE", "none"), "basic"),
    (
        "allowed_origins",
        "--allowed-origins",
        "FASTPROXY_ALLOWED_ORIGINS",
        (),
        (
            "https://App.example.com, http://localhost:3000",
            (
                "https://app.example.com",
                "http://localhost:3000",
            ),
        ),
        "app.example.com",
    ),
    ("max_sessions", "--max-sessions", "FASTPROXY_MAX_SESSIONS", 10000, ("2", 2), "0"),
    (
        "max_sessions_per_address",
        "--max-sessions-per-address",
        "FASTPROXY_MAX_SESSIONS_PER_ADDRESS",
        0,
        ("1", 1),
        "-1",
    ),
    (
        "max_client_message_bytes",
        "--max-client-message-bytes",
        "FASTPROXY_MAX_CLIENT_MESSAGE_BYTES",
        16777216,
        ("1048576", 1048576),
        "1.5",
    ),
    (
        "max_upstream_message_bytes",
        "--max-upstream-message-bytes",
        "FASTPROXY_MAX_UPSTREAM_MESSAGE_BYTES",
        16777216,
        ("2048", 2048),
        "0",
    ),
    (
        "queue_max_messages",
        "--queue-max-messages",
        "FASTPROXY_QUEUE_MAX_MESSAGES",
        2048,
        ("10", 10),
        "ten",
    ),
    (
        "queue_max_bytes",
        "--queue-max-bytes",
        "FASTPROXY_QUEUE_MAX_BYTES",
        4194304,
        ("1000", 1000),
        "0",
    ),
    (
        "send_buffer_max_bytes",
        "--send-buffer-max-bytes",
        "FASTPROXY_SEND_BUFFER_MAX_BYTES",
        33554432,
        ("65536", 65536),
        "",
    ),
    (
        "drain_timeout_ms",
        "--drain-timeout-ms",
        "FASTPROXY_DRAIN_TIMEOUT_MS",
        25000,
        ("500", 500),
        "-1",
    ),
    ("log_level", "--log-level", "FASTPROXY_LOG_LEVEL", "info", ("DEBUG", "debug"), "trace"),
    ("log_format", "--log-format", "FASTPROXY_LOG_FORMAT", "text", ("json", "json"), "xml"),
    ("metrics_port", "--metrics-port", "FASTPROXY_METRICS_PORT", None, ("9100", 9100), "-1"),
    ("workers", "--workers", "FASTPROXY_WORKERS", 1, ("4", 4), "0"),
    (
        "ping_interval_ms",
        "--ping-interval-ms",
        "FASTPROXY_PING_INTERVAL_MS",
        15000,
        ("0", 0),
        "soon",
    ),
    (
        "ping_timeout_ms",
        "--ping-timeout-ms",
        "FASTPROXY_PING_TIMEOUT_MS",
        30000,
        ("1000", 1000),
        "0",
    ),
]
IDS = [c[0] for c in CASES]


def test_every_setting_is_covered() -> None:
    covered = {c[0] for c in CASES} | {"api_key", "auth_tokens", "extra_events", "metrics"}
    assert covered == {s.name for s in SETTINGS}


def test_metrics_is_a_boolean_flag_pair_and_env() -> None:
    assert load_config([], {}).metrics is True
    assert load_config(["--no-metrics"], {}).metrics is False
    assert load_config([], {"FASTPROXY_METRICS": "off"}).metrics is False
    assert load_config(["--metrics"], {"FASTPROXY_METRICS": "0"}).metrics is True


def test_table_matches_flags_and_env_names() -> None:
    for name, flag, env, *_ in CASES:
        setting = next(s for s in SETTINGS if s.name == name)
        assert setting.flag == flag
        assert setting.env[0] == env


@pytest.mark.parametrize(("name", "flag", "env", "default", "good", "bad"), CASES, ids=IDS)
def test_default(
    name: str, flag: str, env: str, default: object, good: tuple[str, object], bad: str
) -> None:
    assert getattr(load_config([], {}), name) == default
    assert getattr(load_config(None, {}), name) == default
    assert getattr(Config(), name) == default


@pytest.mark.parametrize(("name", "flag", "env", "default", "good", "bad"), CASES, ids=IDS)
def test_env(
    name: str, flag: str, env: str, default: object, good: tuple[str, object], bad: str
) -> None:
    raw, parsed = good
    assert getattr(load_config([], {env: raw}), name) == parsed


@pytest.mark.parametrize(("name", "flag", "env", "default", "good", "bad"), CASES, ids=IDS)
def test_flag(
    name: str, flag: str, env: str, default: object, good: tuple[str, object], bad: str
) -> None:
    raw, parsed = good
    assert getattr(load_config([flag, raw], {}), name) == parsed
    assert getattr(load_config([f"{flag}={raw}"], {}), name) == parsed


@pytest.mark.parametrize(("name", "flag", "env", "default", "good", "bad"), CASES, ids=IDS)
def test_flag_beats_env(
    name: str, flag: str, env: str, default: object, good: tuple[str, object], bad: str
) -> None:
    raw, parsed = good
    # An invalid env value is never even looked at when the flag is given.
    assert getattr(load_config([flag, raw], {env: bad or "!!"}), name) == parsed


@pytest.mark.parametrize(("name", "flag", "env", "default", "good", "bad"), CASES, ids=IDS)
def test_invalid_value_names_the_setting(
    name: str, flag: str, env: str, default: object, good: tuple[str, object], bad: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config([flag, bad], {})
    assert name in str(err.value)
    assert flag in str(err.value)
    assert err.value.setting == name
    if bad.strip():  # an empty env var counts as unset
        with pytest.raises(ConfigError) as err:
            load_config([], {env: bad})
        assert name in str(err.value)
        assert env in str(err.value)


@pytest.mark.parametrize(("name", "flag", "env", "default", "good", "bad"), CASES, ids=IDS)
def test_empty_env_counts_as_unset(
    name: str, flag: str, env: str, default: object, good: tuple[str, object], bad: str
) -> None:
    assert getattr(load_config([], {env: "  "}), name) == default


# ------------------------------------------------------------------ specific rules


def test_ports_range() -> None:
    assert load_config(["--port", "0"], {}).port == 0
    assert load_config(["--port", "65535"], {}).port == 65535
    for bad in ("-1", "65536", "80a", "8e3"):
        with pytest.raises(ConfigError, match="port"):
            load_config(["--port", bad], {})
    assert load_config(["--metrics-port", "none"], {}).metrics_port is None
    assert load_config([], {"FASTPROXY_METRICS_PORT": "0"}).metrics_port == 0
    with pytest.raises(ConfigError, match="metrics_port"):
        load_config(["--metrics-port", "70000"], {})


def test_metrics_port_must_differ_from_port() -> None:
    with pytest.raises(ConfigError, match="metrics_port"):
        load_config(["--port", "9000", "--metrics-port", "9000"], {})


def test_paths_must_start_with_slash_and_be_non_empty() -> None:
    with pytest.raises(ConfigError, match=r"paths.*'openai'.*must start with '/'"):
        load_config(["--paths", "openai"], {})
    with pytest.raises(ConfigError, match="paths"):
        load_config(["--paths", ","], {})
    with pytest.raises(ConfigError, match="paths"):
        load_config(["--paths", "/a?x=1"], {})
    assert load_config(["--paths", "/openai,/openai"], {}).paths == ("/openai",)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(t, True) for t in ("1", "true", "YES", "On")]
    + [(f, False) for f in ("0", "false", "no", "OFF")],
)
def test_booleans(raw: str, expected: bool) -> None:
    assert load_config([], {"FASTPROXY_EXTRA_EVENTS": raw}).extra_events is expected


def test_boolean_flags_and_precedence() -> None:
    assert load_config([], {}).extra_events is True
    assert load_config(["--no-extra-events"], {}).extra_events is False
    assert load_config(["--extra-events"], {"FASTPROXY_EXTRA_EVENTS": "off"}).extra_events is True
    assert load_config(["--no-extra-events"], {"FASTPROXY_EXTRA_EVENTS": "1"}).extra_events is False
    # The last of the pair wins, as usual for argparse.
    assert load_config(["--no-extra-events", "--extra-events"], {}).extra_events is True


@pytest.mark.parametrize("raw", ["2", "y", "enabled", "truee"])
def test_invalid_boolean_names_the_setting(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"extra_events.*FASTPROXY_EXTRA_EVENTS"):
        load_config([], {"FASTPROXY_EXTRA_EVENTS": raw})


def test_log_level_alias_and_fallback() -> None:
    assert load_config(["--log-level", "warn"], {}).log_level == "warning"
    assert load_config(["--log-level", "WARNING"], {}).log_level == "warning"
    assert load_config([], {"LOG_LEVEL": "debug"}).log_level == "debug"
    env = {"LOG_LEVEL": "debug", "FASTPROXY_LOG_LEVEL": "error"}
    assert load_config([], env).log_level == "error"
    assert load_config(["--log-level", "info"], env).log_level == "info"
    with pytest.raises(ConfigError, match=r"log_level.*LOG_LEVEL"):
        load_config([], {"LOG_LEVEL": "verbose"})


def test_upstream_url_fallback() -> None:
    assert load_config([], {"OPENAI_REALTIME_URL": "ws://h:1/x"}).upstream_url == "ws://h:1/x"
    env = {"OPENAI_REALTIME_URL": "ws://h:1/x", "FASTPROXY_UPSTREAM_URL": "wss://h:2/y"}
    assert load_config([], env).upstream_url == "wss://h:2/y"
    assert load_config(["--upstream-url", "ws://h:3/"], env).upstream_url == "ws://h:3/"


def test_workers_auto_is_cpu_count() -> None:
    workers = load_config(["--workers", "auto"], {}).workers
    assert isinstance(workers, int) and workers >= 1
    assert load_config([], {"FASTPROXY_WORKERS": "AUTO"}).workers == workers


def test_origins_star_and_case() -> None:
    c = load_config(["--allowed-origins", "*"], {})
    assert c.allowed_origins == ("*",) and c.any_origin
    assert Config().any_origin
    c = load_config([], {"FASTPROXY_ALLOWED_ORIGINS": "https://APP.example.com"})
    assert c.allowed_origins == ("https://app.example.com",) and not c.any_origin


def test_unknown_flag_is_an_error() -> None:
    with pytest.raises(ConfigError, match="--bogus"):
        load_config(["--bogus", "1"], {})
    with pytest.raises(ConfigError, match="--port"):
        load_config(["--port"], {})


# ------------------------------------------------------------------ API key


def test_api_key_default_env_and_fallback() -> None:
    assert load_config([], {}).api_key is None
    assert load_config([], {"OPENAI_API_KEY": "sk-b"}).api_key == "sk-b"
    env = {"OPENAI_API_KEY": "sk-b", "FASTPROXY_OPENAI_API_KEY": " sk-a "}
    assert load_config([], env).api_key == "sk-a"
    assert load_config([], {"FASTPROXY_OPENAI_API_KEY": "", "OPENAI_API_KEY": "sk-b"}).api_key == (
        "sk-b"
    )


def test_api_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("  sk-from-file\n\n")
    env = {"FASTPROXY_OPENAI_API_KEY": "sk-env"}
    assert load_config(["--api-key-file", str(path)], env).api_key == "sk-from-file"


def test_api_key_file_errors_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"api_key.*--api-key-file.*cannot read") as err:
        load_config(["--api-key-file", str(tmp_path / "missing")], {})
    assert err.value.setting == "api_key"
    empty = tmp_path / "empty"
    empty.write_text("\n  \n")
    with pytest.raises(ConfigError, match=r"api_key.*empty"):
        load_config(["--api-key-file", str(empty)], {})


def test_api_key_with_inner_whitespace_is_rejected_without_echo() -> None:
    with pytest.raises(ConfigError, match="api_key") as err:
        load_config([], {"OPENAI_API_KEY": "sk-abc def-SECRET"})
    assert "SECRET" not in str(err.value)


# ------------------------------------------------------------------ auth (§11.1)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.2",
        "127.255.255.254",
        "::1",
        "[::1]",
        "localhost",
        "LOCALHOST",
        "::ffff:127.0.0.1",
    ],
)
def test_auth_defaults_to_none_on_loopback(host: str) -> None:
    assert is_loopback_host(host)
    c = load_config(["--host", host], {})
    assert c.auth == "none"
    assert not any("auth=none" in w for w in c.startup_warnings())


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "example.com", "128.0.0.1"])
def test_auth_defaults_to_token_off_loopback(host: str) -> None:
    assert not is_loopback_host(host)
    c = load_config(["--host", host], {"FASTPROXY_AUTH_TOKENS": "t1"})
    assert c.auth == "token"
    assert c.auth_tokens == ("t1",)


def test_token_default_without_token_is_fatal() -> None:
    with pytest.raises(ConfigError, match="auth") as err:
        load_config(["--host", "0.0.0.0"], {})
    assert err.value.setting == "auth"
    assert "--auth-tokens-file" in str(err.value)


def test_explicit_token_mode_without_token_is_fatal() -> None:
    with pytest.raises(ConfigError, match="auth=token"):
        load_config(["--auth", "token"], {})
    with pytest.raises(ConfigError, match="auth"):
        load_config([], {"FASTPROXY_AUTH": "token", "FASTPROXY_AUTH_TOKENS": " , "})


def test_explicit_none_off_loopback_warns() -> None:
    c = load_config(["--host", "0.0.0.0", "--auth", "none"], {})
    assert c.auth == "none"
    assert any("auth=none" in w and "0.0.0.0" in w for w in c.startup_warnings())


def test_token_mode_on_loopback() -> None:
    c = load_config([], {"FASTPROXY_AUTH": "token", "FASTPROXY_AUTH_TOKENS": "a, b ,,a"})
    assert c.auth == "token"
    assert c.auth_tokens == ("a", "b")


def test_auth_tokens_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("tok-1\n\n  tok-2  \n\n")
    c = load_config(
        ["--auth-tokens-file", str(path), "--auth", "token"], {"FASTPROXY_AUTH_TOKENS": "env-tok"}
    )
    assert c.auth_tokens == ("tok-1", "tok-2")
    with pytest.raises(ConfigError, match=r"auth_tokens.*--auth-tokens-file"):
        load_config(["--auth-tokens-file", str(tmp_path / "nope")], {})


def test_token_with_whitespace_is_rejected_without_echo() -> None:
    with pytest.raises(ConfigError, match="auth_tokens") as err:
        load_config([], {"FASTPROXY_AUTH_TOKENS": "good,bad tok-SECRET"})
    assert "SECRET" not in str(err.value)


def test_tokens_ignored_warning_with_auth_none() -> None:
    c = load_config([], {"FASTPROXY_AUTH_TOKENS": "t"})
    assert c.auth == "none"
    assert any("ignored" in w for w in c.startup_warnings())


# ------------------------------------------------------------------ secrets and repr


def test_repr_masks_secrets(tmp_path: Path) -> None:
    c = load_config(
        ["--auth", "token"],
        {"OPENAI_API_KEY": "sk-test-SECRET", "FASTPROXY_AUTH_TOKENS": "tok-SECRET,tok2-SECRET"},
    )
    for text in (repr(c), str(c), f"{c}", str(c.describe())):
        assert "SECRET" not in text
    assert "auth_tokens=<2 token(s)>" in repr(c)
    assert "api_key='***'" in repr(c)
    assert "api_key=None" in repr(Config())
    assert c.secrets == ("sk-test-SECRET", "tok-SECRET", "tok2-SECRET")
    assert Config().secrets == ()


def test_session_options() -> None:
    flags = {
        "--turn-detection": "manual",
        "--greeting": "off",
        "--transcription-model": "m",
        "--transcription-language": "fr",
        "--ready-timeout-ms": "1",
        "--sequencer-timeout-ms": "2",
        "--queue-max-messages": "3",
        "--queue-max-bytes": "4",
    }
    c = load_config(
        [f"{k}={v}" for k, v in flags.items()] + ["--no-extra-events"],
        {"OPENAI_API_KEY": "sk-x", "FASTPROXY_AUTH_TOKENS": "t"},
    )
    assert c.session_options() == SessionOptions(
        turn_detection="manual",
        greeting="off",
        extra_events=False,
        transcription_model="m",
        transcription_language="fr",
        ready_timeout_ms=1,
        sequencer_timeout_ms=2,
        queue_max_messages=3,
        queue_max_bytes=4,
        secrets=("sk-x", "t"),
    )
    assert Config().session_options() == SessionOptions()


def test_config_is_frozen() -> None:
    c = Config()
    with pytest.raises(AttributeError):
        c.port = 1  # type: ignore[misc]


# ------------------------------------------------------------------ mock upstream switch


def test_use_mock_upstream() -> None:
    c = load_config([], {})
    assert c.use_mock_upstream
    assert any("MOCK" in w for w in c.startup_warnings())
    assert not load_config([], {"OPENAI_API_KEY": "sk"}).use_mock_upstream
    assert not load_config(["--upstream-url", "ws://127.0.0.1:9/"], {}).use_mock_upstream
    assert not load_config([], {"OPENAI_REALTIME_URL": "ws://127.0.0.1:9/"}).use_mock_upstream
    # Explicitly choosing the default URL still means "no mock".
    explicit = load_config(["--upstream-url", DEFAULT_UPSTREAM_URL], {})
    assert not explicit.use_mock_upstream
    assert any("no API key" in w for w in explicit.startup_warnings())
    # Directly built configs: a non-default URL means a real (or test) upstream.
    assert Config().use_mock_upstream
    assert not Config(upstream_url="ws://127.0.0.1:9/").use_mock_upstream


def test_small_send_buffer_warns() -> None:
    c = load_config(["--send-buffer-max-bytes", "1000"], {"OPENAI_API_KEY": "sk"})
    assert any("send_buffer_max_bytes" in w for w in c.startup_warnings())
    assert load_config([], {"OPENAI_API_KEY": "sk"}).startup_warnings() == []
