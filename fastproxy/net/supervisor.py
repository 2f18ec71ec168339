"""The multi-worker supervisor: ``fastproxy serve --workers N`` with N > 1.

Theory of operation. One uvloop process uses one core. With ``--workers N`` the ``serve`` process
becomes a supervisor that serves no client itself and runs N worker processes. Each worker is a
fresh interpreter (``python -m fastproxy.net.supervisor --worker I``; no fork, so no inherited
loop, socket or lock) that reads its :class:`WorkerJob` (the resolved Config, pickled) from stdin —
so the API key never appears on a command line — runs ``serve`` on its own uvloop loop and binds
its own listening socket on the same host:port with SO_REUSEPORT; the kernel spreads new
connections over the workers' sockets. A worker writes ``ready`` on stdout once it listens, and
takes EOF on stdin as its supervisor's death and stops at once: no worker outlives the supervisor.

The supervisor

- reserves the port(s) for the whole run with a bound, never-listening SO_REUSEPORT socket: this
  resolves port 0 once for every worker, fails fast when another program holds the port, and keeps
  the port while workers restart;
- runs the built-in mock upstream (no API key) once, shared by all workers;
- owns the Prometheus multiprocess directory: a per-run directory (``fastproxy-<pid>`` under
  ``$PROMETHEUS_MULTIPROC_DIR``, else under the temp directory), wiped at start and removed at
  exit; it calls ``mark_process_dead`` for every worker that exits and counts restarts in
  ``fastproxy_worker_restarts_total``;
- restarts a worker that dies, after a backoff that doubles from ``RESTART_BACKOFF_S`` to
  ``RESTART_BACKOFF_MAX_S`` while the worker keeps dying within ``STABLE_AFTER_S`` of its start.
  A worker that dies before it listens during the initial start stops everything with exit
  status 1 (a bad setting, the port in use);
- on SIGTERM forwards SIGTERM (each worker drains, PROTOCOL.md §3.6), restarts nothing any more,
  and exits 0 once every worker has exited; workers still alive ``drain_timeout_ms`` +
  ``STOP_GRACE_S`` later are killed;
- on a second SIGTERM or on SIGINT sends SIGINT (each worker closes its pairs with 1001 and exits
  at once); workers still alive ``STOP_GRACE_S`` later are killed.

Signals are meant for the supervisor's pid (systemd: ``KillMode=mixed``). A worker ignores a
repeated SIGTERM (a signal sent to the whole process group reaches it twice), so "at once" always
comes from the supervisor as SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pickle
import shutil
import signal
import socket
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastproxy.config import Config

log = logging.getLogger("fastproxy.supervisor")

RESTART_BACKOFF_S = 0.25
RESTART_BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 30.0  # a worker that lived this long restarts after the shortest backoff
START_TIMEOUT_S = 30.0  # every worker must listen within this at start-up
DRAIN_CLOSE_S = 3.0  # ProxyServer.drain waits this long for the 1001 closes
STOP_GRACE_S = 5.0  # then a worker that has not exited is killed
READY_LINE = b"ready\n"
METRICS_DIR_PREFIX = "fastproxy-"
_HEADER = struct.Struct("!I")


@dataclass(frozen=True)
class WorkerJob:
    """What a worker process receives on stdin."""

    config: Config
    index: int
    metrics_dir: str | None


@dataclass(frozen=True)
class WorkerContext:
    """Given to ``serve`` in a worker process (see ``fastproxy.net.server.serve``)."""

    index: int
    metrics_dir: str | None

    def listening(self, port: int, stop: asyncio.Event) -> None:
        """Tell the supervisor this worker listens; stop at once when the supervisor is gone."""
        loop = asyncio.get_running_loop()

        def stdin_readable() -> None:
            try:
                data = os.read(0, 4096)
            except OSError:
                data = b""
            if not data:  # EOF: the supervisor exited (or was killed)
                loop.remove_reader(0)
                log.warning("supervisor gone: worker %d stopping", self.index)
                stop.set()

        loop.add_reader(0, stdin_readable)
        log.info("worker %d (pid %d) listening on port %d", self.index, os.getpid(), port)
        os.write(1, READY_LINE)


# --------------------------------------------------------------------------- the worker side


def worker_main() -> int:
    """Entry point of a worker process (``python -m fastproxy.net.supervisor --worker I``)."""
    job = _read_job()
    from fastproxy.logs import setup_logging

    config = job.config
    setup_logging(config.log_level, config.log_format, config.secrets)
    _tag_log_records(job.index)
    import uvloop

    from fastproxy.net.server import serve, tune_gc

    tune_gc()
    return uvloop.run(serve(config, worker=WorkerContext(job.index, job.metrics_dir)))


def _read_job() -> WorkerJob:
    def read_exactly(n: int) -> bytes:
        chunks = []
        while n:
            chunk = os.read(0, n)
            if not chunk:
                raise SystemExit("fastproxy worker: no job on stdin (start it with --workers N)")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    (size,) = _HEADER.unpack(read_exactly(_HEADER.size))
    job = pickle.loads(read_exactly(size))
    assert isinstance(job, WorkerJob)
    return job


def _tag_log_records(index: int) -> None:
    """Every log record of this process carries ``worker=<index>`` (both log formats)."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.worker = index
        return record

    logging.setLogRecordFactory(factory)


# --------------------------------------------------------------------------- the supervisor


@dataclass
class _Slot:
    """One worker position; its process changes when the worker is restarted."""

    index: int
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    spawning: bool = False  # between _spawn and the process existing (or failing to)
    ready: bool = False
    quick_deaths: int = 0
    restart: asyncio.TimerHandle | None = None


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"exit status {code}"


class Supervisor:
    """Runs ``config.workers`` worker processes; see the module docstring."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.slots = [_Slot(i) for i in range(config.workers)]
        self.phase = "starting"  # -> running -> draining | stopping
        self.failed = False
        self.metrics_dir: str | None = None
        self.restarts: Any = None  # prometheus Counter (multiprocess file) when metrics are on
        self._tasks: set[asyncio.Task[None]] = set()
        self._startup_done = asyncio.Event()
        self._all_exited = asyncio.Event()
        self._kill_timer: asyncio.TimerHandle | None = None
        self._worker_config: Config = config

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self) -> int:
        from fastproxy.net.mock_runtime import maybe_start_mock_upstream

        loop = asyncio.get_running_loop()
        reservations: list[socket.socket] = []
        mock = None
        try:
            if self.config.metrics:
                self._prepare_metrics()
            config, reservations = _reserve_ports(self.config)
            mock = await maybe_start_mock_upstream(config)
            self._worker_config = mock.config if mock is not None else config
            loop.add_signal_handler(signal.SIGTERM, self.on_sigterm)
            loop.add_signal_handler(signal.SIGINT, self.stop_now, "SIGINT")
            if config.max_sessions_per_address:
                log.warning(
                    "max_sessions_per_address=%d is enforced by each of the %d workers: one "
                    "address may hold up to %d sessions in total",
                    config.max_sessions_per_address,
                    len(self.slots),
                    config.max_sessions_per_address * len(self.slots),
                )
            for slot in self.slots:
                self._spawn(slot)
            try:
                async with asyncio.timeout(START_TIMEOUT_S):
                    await self._startup_done.wait()
            except TimeoutError:
                log.error("workers did not listen within %.0f s: stopping", START_TIMEOUT_S)
                self.failed = True
            if self.failed:
                self.stop_now("start-up failed")
            elif self.phase == "starting":
                self.phase = "running"
                log.info(
                    "fastproxy listening on %s:%d (paths %s) with %d workers (pids %s)",
                    config.host,
                    config.port,
                    ",".join(config.paths),
                    len(self.slots),
                    ",".join(str(s.proc.pid) for s in self.slots if s.proc is not None),
                    extra={"event": "listening", "workers": len(self.slots)},
                )
            await self._all_exited.wait()
            log.info("all workers exited")
            return 1 if self.failed else 0
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            loop.remove_signal_handler(signal.SIGINT)
            await self._kill_leftovers()
            if mock is not None:
                await mock.stop()
            for sock in reservations:
                sock.close()
            if self.metrics_dir is not None:
                shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _prepare_metrics(self) -> None:
        """The per-run multiprocess directory, set in the environment before prometheus_client
        is imported here or in any worker (it picks its value class at import)."""
        if "prometheus_client" in sys.modules:
            log.warning(
                "prometheus_client was imported before the supervisor set up its "
                "multiprocess directory: worker restarts will not be counted"
            )
        base = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.gettempdir()
        run_dir = Path(base) / f"{METRICS_DIR_PREFIX}{os.getpid()}"
        _remove_stale_metrics_dirs(Path(base))
        shutil.rmtree(run_dir, ignore_errors=True)  # a previous run with our pid (containers)
        run_dir.mkdir(mode=0o700, parents=True)
        self.metrics_dir = str(run_dir)
        os.environ.pop("prometheus_multiproc_dir", None)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
        from fastproxy.metrics import worker_restarts_counter

        self.restarts = worker_restarts_counter(None)
        log.debug("metrics directory %s", self.metrics_dir)

    # -- workers ----------------------------------------------------------------------------

    def _spawn(self, slot: _Slot) -> None:
        slot.restart = None
        slot.spawning = True
        task = asyncio.get_running_loop().create_task(self._run_worker(slot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_worker(self, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        job = WorkerJob(self._worker_config, slot.index, self.metrics_dir)
        payload = pickle.dumps(job)
        slot.ready = False
        slot.started_at = loop.time()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "fastproxy.net.supervisor",
                f"--worker={slot.index}",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=_worker_env(),
            )
        except OSError as exc:
            slot.spawning = False
            log.error("cannot start worker %d: %s", slot.index, exc)
            self._exited(slot, None, 1)
            return
        slot.proc = proc
        slot.spawning = False
        assert proc.stdin is not None and proc.stdout is not None
        log.info(
            "worker %d started (pid %d)",
            slot.index,
            proc.pid,
            extra={"worker": slot.index, "pid": proc.pid},
        )
        with contextlib.suppress(OSError):  # stdin stays open: its EOF tells the worker we died
            proc.stdin.write(_HEADER.pack(len(payload)) + payload)
        if self.phase in ("draining", "stopping"):  # a signal came while it was starting
            self._signal(proc, signal.SIGTERM if self.phase == "draining" else signal.SIGINT)
        while line := await proc.stdout.readline():
            if line == READY_LINE and not slot.ready:
                slot.ready = True
                self._check_startup()
            else:  # anything the worker printed
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
        code = await proc.wait()
        self._exited(slot, proc.pid, code)

    def _exited(self, slot: _Slot, pid: int | None, code: int) -> None:
        loop = asyncio.get_running_loop()
        slot.proc = None
        if pid is not None and self.metrics_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        how = _describe_exit(code)
        fields = {"worker": slot.index, "pid": pid, "exit_code": code}
        if self.phase in ("draining", "stopping"):
            log.info("worker %d (pid %s) exited (%s)", slot.index, pid, how, extra=fields)
            self._check_all_exited()
            return
        if self.phase == "starting" and not slot.ready:
            log.error(
                "worker %d (pid %s) exited (%s) before listening: stopping",
                slot.index,
                pid,
                how,
                extra=fields,
            )
            self.failed = True
            self._startup_done.set()
            return
        lived = loop.time() - slot.started_at
        if lived >= STABLE_AFTER_S:
            slot.quick_deaths = 0
        delay = min(RESTART_BACKOFF_S * 2**slot.quick_deaths, RESTART_BACKOFF_MAX_S)
        slot.quick_deaths += 1
        log.warning(
            "worker %d (pid %s) died (%s) after %.1f s: restarting it in %.2f s",
            slot.index,
            pid,
            how,
            lived,
            delay,
            extra=fields,
        )
        slot.restart = loop.call_later(delay, self._restart, slot)

    def _restart(self, slot: _Slot) -> None:
        if self.phase in ("draining", "stopping"):
            return
        if self.restarts is not None:
            self.restarts.inc()
        self._spawn(slot)

    def _check_startup(self) -> None:
        if self.phase == "starting" and all(s.ready for s in self.slots):
            self._startup_done.set()

    def _check_all_exited(self) -> None:
        if self.phase in ("draining", "stopping") and all(
            s.proc is None and s.restart is None and not s.spawning for s in self.slots
        ):
            self._all_exited.set()

    # -- signals ----------------------------------------------------------------------------

    def on_sigterm(self) -> None:
        if self.phase in ("draining", "stopping"):
            self.stop_now("second SIGTERM")
            return
        drain_s = self.config.drain_timeout_ms / 1000.0
        log.info("SIGTERM: every worker drains for up to %d ms", self.config.drain_timeout_ms)
        self._enter("draining", signal.SIGTERM, drain_s + DRAIN_CLOSE_S + STOP_GRACE_S)

    def stop_now(self, why: str) -> None:
        if self.phase == "stopping":
            return
        log.info("%s: stopping every worker at once", why)
        self._enter("stopping", signal.SIGINT, STOP_GRACE_S)

    def _enter(self, phase: str, signum: signal.Signals, kill_after_s: float) -> None:
        self.phase = phase
        self._startup_done.set()
        for slot in self.slots:
            if slot.restart is not None:
                slot.restart.cancel()
                slot.restart = None
            if slot.proc is not None:
                self._signal(slot.proc, signum)
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        self._kill_timer = asyncio.get_running_loop().call_later(kill_after_s, self._kill_all)
        self._check_all_exited()

    def _kill_all(self) -> None:
        for slot in self.slots:
            if slot.proc is not None:
                log.warning(
                    "worker %d (pid %d) did not exit: killing it", slot.index, slot.proc.pid
                )
                self._signal(slot.proc, signal.SIGKILL)

    @staticmethod
    def _signal(proc: asyncio.subprocess.Process, signum: int) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)

    async def _kill_leftovers(self) -> None:
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        for slot in self.slots:
            if slot.restart is not None:
                slot.restart.cancel()
            if slot.proc is not None:
                self._signal(slot.proc, signal.SIGKILL)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=STOP_GRACE_S)
        for task in list(self._tasks):
            task.cancel()


def _remove_stale_metrics_dirs(base: Path) -> None:
    """Remove the directories of earlier supervisors that died without cleaning up (SIGKILL)."""
    with contextlib.suppress(OSError):
        for path in base.glob(f"{METRICS_DIR_PREFIX}[0-9]*"):
            pid = path.name.removeprefix(METRICS_DIR_PREFIX)
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(path, ignore_errors=True)
            except PermissionError:  # alive, someone else's
                pass


def _worker_env() -> dict[str, str]:
    """The supervisor's environment, with this copy of fastproxy first on the import path."""
    import fastproxy

    env = dict(os.environ)
    root = Path(fastproxy.__file__).resolve().parents[1]
    if root.name not in ("site-packages", "dist-packages"):  # a checkout, not an install
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(root) + (os.pathsep + path if path else "")
    return env


def _reserve_ports(config: Config) -> tuple[Config, list[socket.socket]]:
    """Bind (never listen) the proxy port and the metrics port with SO_REUSEPORT for the whole
    run; port 0 becomes the port the kernel chose, for every worker."""
    port_sock = _reserve(config.host, config.port)
    socks = [port_sock]
    config = dataclasses.replace(config, port=int(port_sock.getsockname()[1]))
    if config.metrics_port is not None:
        try:
            metrics_sock = _reserve(config.host, config.metrics_port)
        except BaseException:
            port_sock.close()
            raise
        socks.append(metrics_sock)
        config = dataclasses.replace(config, metrics_port=int(metrics_sock.getsockname()[1]))
    return config, socks


def _reserve(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, type_, proto, _, address = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def run_supervisor(config: Config) -> int:
    """``fastproxy serve --workers N`` (N > 1): run the supervisor on uvloop."""
    import uvloop

    try:
        return uvloop.run(Supervisor(config).run())
    except OSError as exc:  # e.g. the port is held by another program
        log.error("cannot start: %s", exc)
        return 1


if __name__ == "__main__":
    # Run the imported module's copy, not this __main__ one: the job on stdin is pickled with
    # fastproxy.net.supervisor's classes.
    from fastproxy.net.supervisor import worker_main as _worker_main

    sys.exit(_worker_main())
