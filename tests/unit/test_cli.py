"""fastproxy.cli: argparse wiring, help texts, exit codes, and the lazy component imports
(exercised with stand-in modules so these tests do not depend on the real components)."""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from fastproxy import __version__, cli, logs
from fastproxy.config import SETTINGS, Config


@pytest.fixture
def fake_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Install a stand-in module under a given name; returns (module, calls)."""

    def install(name: str, attr: str, result: object = 0) -> list[tuple[Any, ...]]:
        calls: list[tuple[Any, ...]] = []

        def entry(*args: Any, **kwargs: Any) -> object:
            calls.append((args, kwargs))
            return result

        module = types.ModuleType(name)
        setattr(module, attr, entry)
        monkeypatch.setitem(sys.modules, name, module)
        return calls

    root = logging.getLogger()
    saved = list(root.handlers), root.level, logging.getLogRecordFactory()
    yield install
    for h in list(root.handlers):
        if h not in saved[0]:
            root.removeHandler(h)
    root.setLevel(saved[1])
    logging.setLogRecordFactory(saved[2])
    logs._redactor = logs.Redactor()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"fastproxy {__version__}"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["serve"], ["mock-upstream"], ["say"], ["bench"]])
def test_help_works(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fastproxy")
    assert len(out) > 300


def test_serve_help_lists_every_setting_with_env_and_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli.main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # undo line wrapping
    for s in SETTINGS:
        assert s.flag is not None and s.flag in out
        for env in s.env:
            assert env in out.replace("- ", "-")
    assert "--no-extra-events" in out
    assert "FASTPROXY_NO_EXTENSIONS" in out


def test_subcommand_help_mentions_options(capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["say", "--help"])
    out = capsys.readouterr().out
    for opt in ("--url", "--token", "--wav", "--timeout", "ws://127.0.0.1:8080/openai"):
        assert opt in out
    cli.main(["bench", "--help"])
    out = capsys.readouterr().out
    for opt in ("--quick", "--save", "--compare", "--threshold", "--plot"):
        assert opt in out
    cli.main(["mock-upstream", "--help"])
    out = capsys.readouterr().out
    for opt in ("--host", "--port", "--mode", "echo", "vad"):
        assert opt in out


@pytest.mark.parametrize(
    ("argv", "env", "setting"),
    [
        (["serve", "--port", "x"], {}, "port"),
        (["serve", "--turn-detection", "auto"], {}, "turn_detection"),
        (["serve"], {"FASTPROXY_EXTRA_EVENTS": "maybe"}, "extra_events"),
        (["serve"], {"LOG_LEVEL": "loud"}, "log_level"),
        (["serve", "--host", "0.0.0.0"], {}, "auth"),
        (["serve", "--paths", "openai"], {}, "paths"),
    ],
)
def test_invalid_setting_exits_2_naming_it(
    argv: list[str], env: dict[str, str], setting: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv, env) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastproxy: error: ")
    assert setting in err
    assert err.count("\n") == 1


def test_unknown_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--bogus"], {}) == 2
    assert "--bogus" in capsys.readouterr().err


def test_serve_calls_run_server(fake_module: Any, capsys: pytest.CaptureFixture[str]) -> None:
    calls = fake_module("fastproxy.net.server", "run_server", 0)
    env = {"FASTPROXY_OPENAI_API_KEY": "sk-test-SECRET", "FASTPROXY_LOG_FORMAT": "json"}
    assert cli.main(["serve", "--port", "0", "--no-extra-events"], env) == 0
    ((args, _kwargs),) = calls
    config = args[0]
    assert isinstance(config, Config)
    assert (config.port, config.extra_events, config.api_key) == (0, False, "sk-test-SECRET")
    err = capsys.readouterr().err
    assert '"message":"fastproxy' in err and "starting" in err
    assert "sk-test-SECRET" not in err


def test_serve_logs_mock_warning(fake_module: Any, capsys: pytest.CaptureFixture[str]) -> None:
    calls = fake_module("fastproxy.net.server", "run_server", None)
    assert cli.main(["serve"], {}) == 0
    assert calls[0][0][0].use_mock_upstream
    err = capsys.readouterr().err
    assert "WARNING" in err and "BUILT-IN MOCK UPSTREAM" in err


def test_serve_runs_a_coroutine_result(fake_module: Any) -> None:
    async def run() -> int:
        return 3

    fake_module("fastproxy.net.server", "run_server", run())
    assert cli.main(["serve"], {}) == 3


def test_serve_without_server_module(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "fastproxy.net.server", None)  # import -> ModuleNotFoundError
    assert cli.main(["serve"], {}) == 2
    assert "not available" in capsys.readouterr().err


def test_serve_module_without_entry(fake_module: Any, capsys: pytest.CaptureFixture[str]) -> None:
    fake_module("fastproxy.net.server", "something_else")
    assert cli.main(["serve"], {}) == 2
    assert "run_server" in capsys.readouterr().err


def test_mock_upstream_wiring(fake_module: Any) -> None:
    calls = fake_module("fastproxy.testing.mock_upstream", "run", None)
    assert cli.main(["mock-upstream", "--port", "9999", "--mode", "vad"], {}) == 0
    assert calls == [((), {"host": "127.0.0.1", "port": 9999, "mode": "vad"})]


def test_mock_upstream_rejects_bad_mode_and_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["mock-upstream", "--mode", "loud"], {}) == 2
    assert "--mode" in capsys.readouterr().err
    assert cli.main(["mock-upstream", "--port", "70000"], {}) == 2
    assert "--port" in capsys.readouterr().err


def test_say_wiring(fake_module: Any) -> None:
    calls = fake_module("fastproxy.tools.say", "run", 0)
    assert cli.main(["say", "Hello there", "--token", "t", "--timeout", "5"], {}) == 0
    assert calls == [
        (
            ("Hello there",),
            {"url": "ws://127.0.0.1:8080/openai", "token": "t", "wav": None, "timeout": 5.0},
        )
    ]


def test_bench_wiring(fake_module: Any) -> None:
    calls = fake_module("fastproxy.tools.bench", "run", 1)
    argv = ["bench", "--quick", "--compare", "base", "--threshold", "5", "--plot", "p.png"]
    assert cli.main(argv, {}) == 1
    [(args, kwargs)] = calls
    assert args == ()
    assert {k: kwargs[k] for k in ("quick", "save", "compare", "threshold", "plot")} == {
        "quick": True,
        "save": None,
        "compare": "base",
        "threshold": 5.0,
        "plot": "p.png",
    }
    assert kwargs["impl"] is None and kwargs["workers"] == 1  # every bench option is passed on


def test_keyboard_interrupt_exits_130(fake_module: Any) -> None:
    def boom(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    fake_module("fastproxy.tools.bench", "run")
    setattr(sys.modules["fastproxy.tools.bench"], "run", boom)  # noqa: B010
    assert cli.main(["bench"], {}) == 130


def test_python_dash_m() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fastproxy", "serve", "--port", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "port" in proc.stderr
