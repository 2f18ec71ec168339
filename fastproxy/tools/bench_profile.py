"""``fastproxy bench --profile PATH``: where the proxy's CPU goes under load, with py-spy.

The proxy runs the 24 kHz passthrough load (300 sessions) while ``py-spy record --native``
samples it twice: once into an interactive flame graph (``PATH``, SVG) and once into collapsed
stacks (``PATH`` with ``.collapsed``), which :func:`analyse` reads to write ``PATH`` with
``.txt``: how many samples ran the relay's audio path, and whether any of them had a Python
frame above the event loop. In ``--native`` stacks a Python function appears as
``name (file.py:line)``, a C/Cython one as ``name (file.c:line)`` / ``(_relay_c.pyx:line)`` /
``(lib.so)``; every stack starts with the Python frames that started the loop (``cli.py`` →
``uvloop.run``), so only frames *above* the first uvloop frame (``loop.c``) count. The compiled
build is expected to show none on the audio path; the pure-Python twin (profiled too when it is
in ``--impl``) shows the contrast. py-spy (``pip install py-spy``) needs ptrace rights on the
proxy (root, or ``kernel.yama.ptrace_scope=0``); without it the profile is reported as not run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fastproxy.tools.bench_scenario import Scenario

if TYPE_CHECKING:
    from fastproxy.tools.bench import Runner

__all__ = ["ProfileSummary", "analyse", "profile"]

_PY_FRAME = re.compile(r"\((?:<frozen [^>]+>|[^()]*\.py):\d+\)$")
_LOOP_FRAME = "(loop.c:"
_SYSCALL = re.compile(r"(send|recv|read|write|sendmsg|recvmsg|writev) \(libc")
# the relay's per-frame work: compiled (Cython frames) or twin (Python frames)
_AUDIO_MARKERS = (
    "Relay__append",
    "Relay__to_client",
    "Relay__fast_delta",
    "send_audio_upstream (fastproxy/net/relay_py.py",
    "upstream_message (fastproxy/net/relay_py.py",
    "send_audio_to_client (fastproxy/net/relay_py.py",
)
RATE_HZ = 250
SETTLE_S = 4.0


@dataclass
class ProfileSummary:
    samples: int = 0
    audio: int = 0  # samples inside the relay's per-frame path
    audio_with_python: int = 0  # ... with a Python frame above the event loop
    audio_in_syscalls: int = 0  # ... whose leaf is a socket call (kernel work both builds pay)
    python_above_loop: int = 0  # any sample with a Python frame above the event loop
    python_functions: Counter[str] = field(default_factory=Counter)
    leaves: Counter[str] = field(default_factory=Counter)
    unparsed: int = 0

    def pct(self, n: int) -> float:
        return 100.0 * n / self.samples if self.samples else 0.0


def analyse(collapsed: str) -> ProfileSummary:
    """Classify py-spy ``--format raw`` output (``frame;frame;... count`` per line)."""
    out = ProfileSummary()
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            out.unparsed += 1 if line.strip() else 0
            continue
        count = int(count_text)
        frames = stack.split(";")
        out.samples += count
        out.leaves[frames[-1]] += count
        loop = next((i for i, f in enumerate(frames) if _LOOP_FRAME in f), len(frames))
        python = [f for f in frames[loop:] if _PY_FRAME.search(f)]
        in_audio = any(marker in stack for marker in _AUDIO_MARKERS)
        if in_audio:
            out.audio += count
            if _SYSCALL.match(frames[-1]):
                out.audio_in_syscalls += count
        if python:
            out.python_above_loop += count
            if in_audio:
                out.audio_with_python += count
            for f in dict.fromkeys(python):
                out.python_functions[f] += count
    return out


def format_summary(s: ProfileSummary, impl: str, svg: str, seconds: float) -> str:
    lines = [
        f"py-spy profile of the proxy ({impl} build), 24 kHz passthrough, 300 sessions, "
        f"{seconds:g} s at {RATE_HZ} Hz, --native (idle samples excluded); flame graph: {svg}",
        f"  active samples: {s.samples}",
        f"  relay audio path (per-frame work): {s.audio} ({s.pct(s.audio):.1f}%)",
        f"  ... with a Python frame above the event loop: {s.audio_with_python}"
        + (" -> no Python on the audio path" if s.audio and not s.audio_with_python else ""),
        f"  ... in a socket system call (send/recv, kernel work): {s.audio_in_syscalls} "
        f"({100.0 * s.audio_in_syscalls / s.audio if s.audio else 0.0:.0f}% of the audio path)",
        f"  any sample with a Python frame above the event loop: {s.python_above_loop} "
        f"({s.pct(s.python_above_loop):.1f}%)",
    ]
    if s.python_functions:
        lines.append("  Python functions seen above the event loop (samples):")
        lines += [f"    {n:6d}  {f}" for f, n in s.python_functions.most_common(12)]
    lines.append("  hottest leaf frames (self samples; epoll_pwait = waiting for sockets):")
    lines += [f"    {n:6d}  {f[:110]}" for f, n in s.leaves.most_common(12)]
    return "\n".join(lines)


def _record(pid: int, seconds: float, fmt: str, path: Path, errors: list[str]) -> None:
    cmd = ["py-spy", "record", "--native", "--pid", str(pid), "--rate", str(RATE_HZ)]
    cmd += ["--duration", str(int(seconds)), "--format", fmt, "--output", str(path)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        errors.append(f"py-spy {fmt}: {exc}")
        return
    if done.returncode != 0 or not path.exists():
        errors.append(f"py-spy {fmt} failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def profile(runner: Runner, path: str, *, quick: bool = False, impl: str = "c") -> str:
    """Profile the proxy under load for each build; write the files; return the summaries."""
    if shutil.which("py-spy") is None:
        runner.failed.append("profile (py-spy is not installed: pip install py-spy)")
        return "profile: not run: py-spy is not installed (pip install py-spy)"
    record_s = 4.0 if quick else 8.0
    svg = Path(path)
    svg.parent.mkdir(parents=True, exist_ok=True)
    texts = []
    impls = [impl] + (["py"] if impl != "py" else [])
    for build in impls:
        suffix = "" if build == impl else f"-{build}"
        target = svg.with_name(f"{svg.stem}{suffix}{svg.suffix or '.svg'}")
        collapsed = target.with_suffix(".collapsed")
        errors: list[str] = []

        def during(
            pid: int, target: Path = target, collapsed: Path = collapsed, errors: list[str] = errors
        ) -> None:
            time.sleep(SETTLE_S)
            _record(pid, record_s, "flamegraph", target, errors)
            _record(pid, record_s, "raw", collapsed, errors)

        scenario = Scenario(
            group="profile",
            audio="24k",
            sessions=300,
            impl=build,
            seconds=SETTLE_S + 2 * record_s + 4.0,
            warmup=3.0,
        )
        runner.total += 1 if build != impl else 0
        result = runner.run(scenario, during=during)
        if result is None or errors or not collapsed.exists():
            message = "; ".join(errors) or "the load did not run"
            runner.failed.append(f"profile ({build}): {message}")
            texts.append(f"profile ({build}): not run: {message}")
            continue
        summary = analyse(collapsed.read_text())
        text = format_summary(summary, build, str(target), record_s)
        target.with_suffix(".txt").write_text(text + "\n")
        texts.append(text)
    return "\n\n".join(texts)
