"""CPU time and memory of processes, read from ``/proc`` (Linux), for the load benchmark.

The load generator snapshots the proxy (with its worker processes, if any), the mock upstream,
itself and the whole machine at both ends of a measurement window; :func:`cpu_between` turns two
:class:`Snapshot` s into percentages of one core. Every reader raises ``OSError`` when the process
is gone; :func:`try_pid` turns that (and an unknown pid) into None.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Snapshot",
    "cpu_between",
    "cpu_busy_seconds",
    "machine_busy_seconds",
    "own_cpu_seconds",
    "proc_cpu_seconds",
    "proc_memory_kib",
    "proc_preempted",
    "process_tree",
    "tree_cpu_seconds",
    "tree_memory_kib",
    "try_pid",
]

_CLK_TCK = os.sysconf("SC_CLK_TCK")
CLOCK_RESOLUTION_S = 1 / _CLK_TCK


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid``, in seconds (``/proc/PID/stat`` fields 14, 15)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``fastproxy serve --workers N`` runs N children)."""
    out: list[int] = []
    todo = [pid]
    while todo and len(out) < 256:
        current = todo.pop()
        out.append(current)
        try:
            for tid in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{tid}/children", "rb") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants (a child that exits drops out)."""
    total = proc_cpu_seconds(pid)
    for child in process_tree(pid)[1:]:
        with contextlib.suppress(OSError):
            total += proc_cpu_seconds(child)
    return total


def tree_memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS``/``VmHWM`` of ``pid`` plus its descendants', in KiB."""
    total = proc_memory_kib(pid)
    for child in process_tree(pid)[1:]:
        try:
            for key, value in proc_memory_kib(child).items():
                total[key] = total.get(key, 0) + value
        except OSError:
            pass
    return total


def proc_memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of ``pid`` in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith((b"VmRSS:", b"VmHWM:")):
                key, value = line.split(b":", 1)
                out[key.decode()] = int(value.split()[0])
    return out


def cpu_busy_seconds() -> list[float]:
    """Busy time of each CPU (``cpuN`` lines of ``/proc/stat``: all but idle and iowait, so
    softirq included), in seconds, indexed by CPU number (missing CPUs read 0)."""
    busy: dict[int, float] = {}
    with open("/proc/stat", "rb") as f:
        for line in f:
            if not line.startswith(b"cpu") or line.startswith(b"cpu "):
                if busy:
                    break
                continue
            name, *values = line.split()
            fields = [int(v) for v in values[:8]]
            busy[int(name[3:])] = (sum(fields) - fields[3] - fields[4]) / _CLK_TCK
    return [busy.get(i, 0.0) for i in range(max(busy, default=-1) + 1)]


def machine_busy_seconds() -> tuple[float, float, float]:
    """All CPUs together, in seconds (``/proc/stat``): (process time = user + nice + system,
    interrupt time = irq + softirq, steal). Loopback TCP delivery mostly runs as softirq, which
    the kernel charges to no process, so the benchmark's own network work shows up there."""
    with open("/proc/stat", "rb") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (
        (user + nice + system) / _CLK_TCK,
        (irq + softirq) / _CLK_TCK,
        steal / _CLK_TCK,
    )


def proc_preempted(pid: int) -> int:
    """``nonvoluntary_ctxt_switches`` of ``pid``'s main thread: how often it was preempted."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"nonvoluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise ValueError("no nonvoluntary_ctxt_switches")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Snapshot:
    wall_ns: int
    own_cpu: float
    proxy_cpu: float | None
    mock_cpu: float | None
    machine_busy: tuple[float, float, float] | None  # (process, interrupt, steal) s, all CPUs
    cpu_busy: list[float] | None  # busy seconds of each CPU
    proxy_preempted: int | None  # nonvoluntary context switches of the proxy's main thread


def cpu_between(a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """CPU use of the generator, the proxy, the mock and everything else between two snapshots."""
    wall = (b.wall_ns - a.wall_ns) / 1e9
    out: dict[str, Any] = {"seconds": wall}
    if wall <= 0:
        return out
    out["loadgen_cpu_percent"] = 100.0 * (b.own_cpu - a.own_cpu) / wall
    for name, before, after in (
        ("proxy", a.proxy_cpu, b.proxy_cpu),
        ("mock", a.mock_cpu, b.mock_cpu),
    ):
        if before is not None and after is not None:
            out[f"{name}_cpu_seconds"] = after - before
            out[f"{name}_cpu_percent"] = 100.0 * (after - before) / wall
    if a.proxy_preempted is not None and b.proxy_preempted is not None:
        out["proxy_preempted_per_s"] = (b.proxy_preempted - a.proxy_preempted) / wall
    ours = [(a.own_cpu, b.own_cpu), (a.proxy_cpu, b.proxy_cpu), (a.mock_cpu, b.mock_cpu)]
    if a.machine_busy is not None and b.machine_busy is not None:
        process, interrupt, steal = (
            y - x for x, y in zip(a.machine_busy, b.machine_busy, strict=True)
        )
        others = process - sum(y - x for x, y in ours if x is not None and y is not None)
        out["other_processes_cpu_percent"] = max(0.0, 100.0 * others / wall)
        out["softirq_cpu_percent"] = 100.0 * interrupt / wall
        out["steal_cpu_percent"] = 100.0 * steal / wall
    if a.cpu_busy and b.cpu_busy and len(a.cpu_busy) == len(b.cpu_busy):
        out["cpu_busy_percent"] = [
            100.0 * (y - x) / wall for x, y in zip(a.cpu_busy, b.cpu_busy, strict=True)
        ]
    return out


def try_pid(fn: Callable[..., Any], *pid: int | None) -> Any:
    """``fn(*pid)``, or None when the pid is unknown or ``/proc`` cannot tell (process gone)."""
    if None in pid:
        return None
    try:
        return fn(*pid)
    except (OSError, ValueError, IndexError):
        return None
