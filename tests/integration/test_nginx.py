"""A real nginx on loopback, configured with ``deploy/nginx/fastproxy.conf``, in front of two
``fastproxy serve`` processes (each with its built-in mock upstream) on different ports.

Only the listen port and the two instance ports of the shipped file are changed; the file is
included from a minimal main configuration that keeps nginx's pid, logs and temp files in the
test's directory. 100 clients connect through nginx (both WebSocket paths), each sends audio,
completes a turn and receives agent audio; both instances served some of them, and their
metrics add up to exactly what the clients did. /metrics, /livez and /readyz are not reachable
through nginx.

Needs the Debian ``nginx`` package (``.ci/run`` installs it); skipped with a clear message only
when no nginx binary exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_kit import (
    REPO_ROOT,
    Deadline,
    Fleet,
    bounded_gather,
    failures,
    free_port,
    http_request,
    one_turn,
    scrape,
    start_fleet,
    total,
)

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
)
SITE = REPO_ROOT / "deploy" / "nginx" / "fastproxy.conf"
CLIENTS = 100
AUDIO_FRAMES = 5

MAIN_CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/fastproxy.conf;
}}
"""


def render_site(listen: int, backends: list[int]) -> str:
    """The shipped site file with only its ports replaced."""
    text = SITE.read_text()
    text, n = re.subn(r"(?m)^(\s*)listen 80;", rf"\1listen 127.0.0.1:{listen};", text)
    assert n == 1, "deploy/nginx/fastproxy.conf: expected one 'listen 80;'"
    shipped = re.findall(r"(?m)^\s*server 127\.0\.0\.1:(\d+)", text)
    assert len(shipped) == len(backends), shipped
    for old, new in zip(shipped, backends, strict=True):
        text = text.replace(f"server 127.0.0.1:{old} ", f"server 127.0.0.1:{new} ", 1)
    return text


@contextlib.contextmanager
def nginx(tmp: Path, listen: int, backends: list[int]) -> Iterator[subprocess.Popen[bytes]]:
    assert NGINX is not None
    (tmp / "fastproxy.conf").write_text(render_site(listen, backends))
    user = "user nobody nogroup;" if os.geteuid() == 0 else ""
    (tmp / "nginx.conf").write_text(MAIN_CONF.format(tmp=tmp, user=user))
    cmd = [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = Deadline(15.0)
        while True:
            assert proc.poll() is None, _read(tmp / "error.log")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", listen), 0.5):
                break
            assert deadline, "nginx did not listen:\n" + _read(tmp / "error.log")
            time.sleep(0.05)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def test_shipped_config_has_what_websockets_behind_a_balancer_need() -> None:
    text = SITE.read_text()
    for directive in (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $fastproxy_connection_upgrade;",
    ):
        assert directive in text
    for timeout in re.findall(r"proxy_(?:read|send)_timeout (\d+)s;", text):
        assert int(timeout) > 3600  # longer than a 60-minute conversation
    assert "/metrics" not in re.sub(r"#.*", "", text)  # nothing routes to it


@pytest.mark.skipif(NGINX is None, reason="no nginx binary: install Debian's nginx (.ci/run does)")
def test_100_clients_through_nginx_reach_both_instances(tmp_path: Path) -> None:
    instances: list[Fleet] = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            instances.append(start_fleet(tmp_path / name, "--greeting", "off"))
        listen = free_port()
        (tmp_path / "nginx").mkdir()
        with nginx(tmp_path / "nginx", listen, [f.port for f in instances]):
            asyncio.run(drive(listen, instances))
            errors = [
                line
                for line in _read(tmp_path / "nginx" / "error.log").splitlines()
                if re.search(r"\[(error|crit|alert|emerg)\]", line)
            ]
            assert not errors, errors[:5]
    finally:
        for fleet in instances:
            fleet.stop()


async def drive(listen: int, instances: list[Fleet]) -> None:
    for path in ("/metrics", "/livez", "/readyz", "/"):
        status, _ = await http_request(listen, path)
        assert status == 404, f"{path} is reachable through nginx ({status})"

    before = [await scrape(f.port) for f in instances]
    paths = ["/v1/agent/converse", "/openai?traceId=via-nginx"]
    results = await bounded_gather(
        [
            lambda path=paths[i % 2]: one_turn(f"ws://127.0.0.1:{listen}{path}", AUDIO_FRAMES)
            for i in range(CLIENTS)
        ],
        concurrency=50,
    )
    assert not failures(results), failures(results)[:3]

    served = []
    turns = frames_in = 0.0
    for fleet, old in zip(instances, before, strict=True):
        deadline = Deadline(10.0)
        while True:  # both instances served: wait until every ended session is counted
            new = await scrape(fleet.port)
            sessions = total(new, "fastproxy_sessions_total") - total(
                old, "fastproxy_sessions_total"
            )
            if total(new, "fastproxy_sessions_active") == 0 or not deadline:
                break
            await asyncio.sleep(0.1)
        served.append(sessions)
        turns += total(new, "fastproxy_turns_total") - total(old, "fastproxy_turns_total")
        frames_in += total(new, "fastproxy_audio_frames_total", direction="client_in") - total(
            old, "fastproxy_audio_frames_total", direction="client_in"
        )
    assert sum(served) == CLIENTS and min(served) > 0, served
    assert turns == CLIENTS
    assert frames_in == CLIENTS * AUDIO_FRAMES  # client audio went through nginx upstream
