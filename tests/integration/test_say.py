"""``fastproxy say`` against a real ``fastproxy serve`` process running its built-in mock upstream.

Both run as subprocesses (``python -m fastproxy ...``) with an environment stripped of every
``FASTPROXY_*`` / ``OPENAI_*`` variable, so the proxy has no API key and must start the in-process
mock (and say so loudly in its log). Every process is killed in a ``finally``; every wait is
bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 15.0
SAY_TIMEOUT_S = 20.0
MOCK_WARNING = "NO OPENAI API KEY"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FASTPROXY_", "OPENAI_")) or k == "FASTPROXY_NO_EXTENSIONS"
    }
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
    if env.get("FASTPROXY_NO_EXTENSIONS") != "1" and not _compiled_relay_available(env):
        # This file tests the say tool, not the relay; the parity tests fail on a missing build.
        warnings.warn(
            "compiled relay missing: running the proxy with FASTPROXY_NO_EXTENSIONS=1",
            stacklevel=2,
        )
        env["FASTPROXY_NO_EXTENSIONS"] = "1"
    return env


def _compiled_relay_available(env: dict[str, str]) -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import fastproxy.net.relay"],
        env=env,
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # immediate stop (SIGTERM would drain)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class Proxy:
    url: str
    log_path: Path
    proc: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _start_proxy(tmp: Path, env: dict[str, str], *extra: str) -> Proxy:
    port = _free_port()
    log_path = tmp / f"serve-{port}.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastproxy", "serve", "--port", str(port), *extra],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    proxy = Proxy(f"ws://127.0.0.1:{port}/openai", log_path, proc)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"fastproxy serve exited ({proc.returncode}):\n{proxy.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1) as r:
                    if r.status == 200:
                        return proxy
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"/livez did not answer in {START_TIMEOUT_S}s:\n{proxy.log()}")
            time.sleep(0.1)
    except BaseException:
        _stop(proc)
        raise


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    running = _start_proxy(tmp_path_factory.mktemp("say"), _clean_env())
    try:
        yield running
    finally:
        _stop(running.proc)


def _say(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastproxy", "say", *args],
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SAY_TIMEOUT_S + 10,
    )


def test_say_hello_through_the_proxy_and_its_builtin_mock(proxy: Proxy, tmp_path: Path) -> None:
    wav_path = tmp_path / "answer.wav"
    done = _say("hello", "--url", proxy.url, "--wav", str(wav_path), "--timeout", "20")
    output = done.stdout
    assert done.returncode == 0, f"stdout:\n{output}\nstderr:\n{done.stderr}"
    assert "<- Welcome" in output
    assert "<- SettingsApplied" in output
    assert 'user: "hello"' in output
    assert 'assistant: "You said: hello"' in output  # the mock's default reply
    assert "<- AgentStartedSpeaking" in output and "total_latency=" in output
    assert "<- AgentAudioDone" in output
    assert "binary messages" in output

    with wave.open(str(wav_path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        assert wav.getnframes() > 0

    assert MOCK_WARNING in proxy.log()


def test_say_fails_with_exit_1_when_nothing_listens() -> None:
    done = _say("hello", "--url", f"ws://127.0.0.1:{_free_port()}/openai", "--timeout", "5")
    assert done.returncode == 1
    assert "cannot connect" in done.stderr


def test_say_sends_its_token(tmp_path: Path) -> None:
    env = _clean_env()
    env["FASTPROXY_AUTH"] = "token"
    env["FASTPROXY_AUTH_TOKENS"] = "s3cret-token"
    running = _start_proxy(tmp_path, env)
    try:
        ok = _say("hi", "--url", running.url, "--token", "s3cret-token", "--timeout", "20")
        assert ok.returncode == 0, f"stdout:\n{ok.stdout}\nstderr:\n{ok.stderr}"
        assert 'assistant: "You said: hi"' in ok.stdout
        refused = _say("hi", "--url", running.url, "--token", "wrong", "--timeout", "5")
        assert refused.returncode == 1
        assert "401" in refused.stderr
    finally:
        _stop(running.proc)
