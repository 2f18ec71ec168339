"""``fastproxy bench``: the end-to-end load benchmark suite, its baselines, plot and profile.

A suite is a list of :class:`~fastproxy.tools.bench_scenario.Scenario` groups run one after the
other, each with fresh processes (mock upstream in echo mode, the real proxy pinned to its own
core, one load generator): 24 kHz passthrough, 16 kHz client and μ-law at 100 and 300 sessions
(compiled relay and pure-Python twin side by side), metrics on vs off in alternating runs,
1,000 idle sessions (RSS per idle session), a session setup burst, and a ramp that finds the
largest session count holding real time (p99 < 50 ms, 0 lost). ``--quick`` is the same shape,
smaller and shorter (< 3 minutes); the full suite stays under 15. Every scenario is bounded in
time (:func:`~fastproxy.tools.bench_scenario.worst_case_seconds`) and the whole run by
``--max-runtime``: a scenario that could not finish in the time left is skipped, and said so.

Library use::

    from fastproxy.tools.bench import Scenario, run_scenario, format_table
    print(format_table([run_scenario(Scenario(sessions=100, seconds=10))]))

Entry points: :func:`run_cli` (``fastproxy bench``), :func:`main` (``benchmarks/e2e_load.py``)
and :func:`run` (keyword form of the same).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from fastproxy.tools import bench_compare, bench_report, bench_tables
from fastproxy.tools.bench_options import GROUPS, add_arguments
from fastproxy.tools.bench_scenario import (
    BenchError,
    Scenario,
    compiled_relay_available,
    holds_real_time,
    run_scenario,
    worst_case_seconds,
)

__all__ = [
    "DEFAULT",
    "QUICK",
    "BenchError",
    "Scenario",
    "format_table",
    "main",
    "run",
    "run_all",
    "run_cli",
    "run_scenario",
    "suite",
]

# Warm-up: near a core's limit the burst of the first seconds (every session's first audio delta
# takes the Session's slow path once) leaves a queue that drains slowly; the window measures the
# steady state after it.
DEFAULT = Scenario(sessions=300, seconds=20.0, warmup=5.0, group="passthrough")
QUICK = Scenario(sessions=100, seconds=7.0, warmup=2.5, group="passthrough")
FULL_RUNTIME_S = 840.0  # under 15 minutes, with the last scenario's stop
QUICK_RUNTIME_S = 160.0
RAMP_FULL = (300, 500, 750, 1000, 1250, 1500, 2000)
RAMP_QUICK = (300, 600)
TWIN_16K_SESSIONS = 5


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """The figures of several runs, one table per suite group, then their notes."""
    return bench_tables.format_tables(results)


# --------------------------------------------------------------------------- suites


def suite(quick: bool, impls: Sequence[str], groups: Sequence[str] = GROUPS) -> list[Scenario]:
    """The fixed scenarios of the suite, in run order (the ramp is planned while it runs)."""
    c = "c" if "c" in impls else impls[0]
    stream = QUICK if quick else DEFAULT
    counts = (100,) if quick else (100, 300)
    out: list[Scenario] = []

    def shape(group: str, audio: str, sessions: int, impl: str, **kw: Any) -> Scenario:
        return dataclasses.replace(
            stream, group=group, audio=audio, sessions=sessions, impl=impl, **kw
        )

    if "passthrough" in groups:
        out += [shape("passthrough", "24k", n, i) for n in counts for i in impls]
    if "resample" in groups:
        out += [shape("resample", "16k", n, c) for n in counts]
        if "py" in impls and c != "py" and not quick:
            # The twin's pure-Python resampler costs ~1 ms per frame: ~10 sessions fill a core.
            out += [shape("resample", "16k", TWIN_16K_SESSIONS, i) for i in (c, "py")]
    if "mulaw" in groups:
        out += [shape("mulaw", "mulaw", n, c) for n in counts]
    if "metrics" in groups:
        n = counts[-1]
        seconds = stream.seconds if quick else 15.0
        pairs = 1 if quick else 2
        for _ in range(pairs):  # alternate, so drift of the machine hits both sides alike
            out.append(shape("metrics", "24k", n, c, metrics=True, seconds=seconds))
            out.append(shape("metrics", "24k", n, c, metrics=False, seconds=seconds))
    if "idle" in groups:
        n = 300 if quick else 1000
        out.append(Scenario(kind="idle", group="idle", sessions=n, impl=c, warm=n // 20, hold=3.0))
    if "setup" in groups:
        n = 500 if quick else 2000
        out.append(
            Scenario(
                kind="idle", group="setup", sessions=n, impl=c, connect_concurrency=200, hold=1.0
            )
        )
    return out


def ramp_step(quick: bool, sessions: int, impl: str) -> Scenario:
    seconds, warmup = (7.0, 2.5) if quick else (12.0, 5.0)
    return Scenario(
        group="ramp",
        audio="24k",
        sessions=sessions,
        impl=impl,
        seconds=seconds,
        warmup=warmup,
        connect_concurrency=100,
    )


# --------------------------------------------------------------------------- running


class Runner:
    """Runs scenarios within a time budget, reporting progress on stderr."""

    def __init__(self, max_runtime: float, workers: int = 1, out: IO[str] | None = None) -> None:
        self.start = time.monotonic()
        self.max_runtime = max_runtime
        self.workers = workers
        self.out = out if out is not None else sys.stderr
        self.results: list[dict[str, Any]] = []
        self.failed: list[str] = []
        self.total = 0
        self.done = 0

    def progress(self, message: str) -> None:
        elapsed = time.monotonic() - self.start
        stamp = f"{int(elapsed // 60)}m{int(elapsed % 60):02d}s"
        print(f"bench [{self.done + 1}/{self.total} {stamp}] {message}", file=self.out, flush=True)

    def remaining(self) -> float:
        return self.max_runtime - (time.monotonic() - self.start)

    def run(
        self, scenario: Scenario, during: Callable[[int], None] | None = None
    ) -> dict[str, Any] | None:
        if self.workers > 1:
            scenario = dataclasses.replace(scenario, workers=self.workers)
        remaining = self.remaining()
        if remaining < worst_case_seconds(scenario) / 2:
            self.progress(f"{scenario.label}: skipped, {remaining:.0f} s left of --max-runtime")
            self.failed.append(f"{scenario.label} (skipped: time)")
            self.done += 1
            return None
        try:
            result = run_scenario(
                scenario, progress=self.progress, time_limit=remaining, during=during
            )
        except (BenchError, OSError, ValueError, subprocess.SubprocessError) as exc:
            self.progress(f"{scenario.label}: failed: {exc}")
            self.failed.append(f"{scenario.label} ({scenario.impl}): {exc}")
            self.done += 1
            return None
        self.done += 1
        self.results.append(result)
        self._headline(result)
        return result

    def _headline(self, r: dict[str, Any]) -> None:
        if r["scenario"]["kind"] == "stream":
            rtt = r["rtt_ms"]
            cpu = r["proxy_cpu_us_per_frame"]
            text = (
                f"{r['label']} ({r['impl']}): "
                f"{'-' if cpu is None else format(cpu, '.2f')} µs/frame, "
                f"p50 {rtt.get('p50', float('nan')):.2f} ms, "
                f"p99 {rtt.get('p99', float('nan')):.2f} ms, lost {r['frames_lost']}"
            )
        else:
            per = r.get("proxy_rss_kib_per_idle_session")
            rate = r.get("setup_rate_per_s")
            text = (
                f"{r['label']} ({r['impl']}): {r['sessions_ready']} ready, "
                f"{'-' if rate is None else format(rate, '.0f')} setups/s, "
                f"{'-' if per is None else format(per, '.1f')} KiB RSS per idle session"
            )
        self.done -= 1  # the line belongs to the scenario just finished
        self.progress(f"done: {text}")
        self.done += 1

    def ramp(self, quick: bool, impl: str) -> None:
        """Raise the session count until real time breaks; then one bisection step."""
        steps = RAMP_QUICK if quick else RAMP_FULL
        passed, failed = 0, None
        for n in steps:
            r = self.run(ramp_step(quick, n, impl))
            if r is None:
                return
            if not holds_real_time(r):
                failed = n
                break
            passed = n
        if quick or failed is None:
            return
        middle = (passed + failed) // 2 // 50 * 50  # passed == 0: half the first step
        if passed < middle < failed:
            self.total += 1
            self.run(ramp_step(quick, middle, impl))


def run_all(
    scenarios: Sequence[Scenario],
    *,
    json_path: str | None = None,
    max_runtime: float = FULL_RUNTIME_S,
    out: IO[str] | None = None,
) -> int:
    """Run ``scenarios`` in turn, print the tables, write JSON; 0 if every scenario ran."""
    runner = Runner(max_runtime)
    runner.total = len(scenarios)
    for scenario in scenarios:
        runner.run(scenario)
    return _finish(runner.results, runner.failed, "custom", json_path, out)


def _finish(
    results: list[dict[str, Any]],
    failed: list[str],
    suite_name: str,
    json_path: str | None,
    out: IO[str] | None,
    argv: Sequence[str] | None = None,
) -> int:
    out = sys.stdout if out is None else out
    if results:
        print(format_table(results), file=out)
        print(bench_tables.format_summary(bench_report.summarize_run(results), results), file=out)
    for failure in failed:
        print(f"not run: {failure}", file=out)
    out.flush()
    if json_path is not None:
        doc = bench_report.document(results, suite_name, argv)
        Path(json_path).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"bench: wrote {json_path}", file=sys.stderr)
    return 1 if failed or not results else 0


# --------------------------------------------------------------------------- command line


def _impls(ns: argparse.Namespace, notes: list[str]) -> list[str]:
    if ns.impl:
        impls = [i.strip() for i in ns.impl.split(",") if i.strip()]
        bad = [i for i in impls if i not in ("c", "py", "auto")]
        if bad or not impls:
            raise ValueError(f"--impl: use c, py or c,py (not {ns.impl!r})")
        return impls
    if compiled_relay_available():
        return ["c", "py"]
    notes.append("compiled relay missing: running the pure-Python twin only (impl py)")
    return ["py"]


def _groups(ns: argparse.Namespace) -> list[str]:
    if ns.only is None:
        return [] if ns.profile else list(GROUPS)
    groups = [g.strip() for g in ns.only.split(",") if g.strip()]
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        raise ValueError(f"--only: unknown group(s) {', '.join(bad)}; use {', '.join(GROUPS)}")
    return groups


def _run_load(ns: argparse.Namespace, argv: Sequence[str] | None) -> tuple[dict[str, Any], int]:
    """Run what the options ask for; (document, status)."""
    notes: list[str] = []
    impls = _impls(ns, notes)
    groups = _groups(ns)
    budget = ns.max_runtime or (QUICK_RUNTIME_S if ns.quick else FULL_RUNTIME_S)
    runner = Runner(budget, workers=ns.workers)
    for note in notes:
        print(f"bench: {note}", file=sys.stderr)
    if ns.sessions:
        name = "custom"
        plan = [
            Scenario(
                sessions=n,
                seconds=ns.seconds,
                warmup=min(ns.warmup, ns.seconds / 2),
                rate=ns.rate,
                impl=impl,
                audio=ns.audio,
                metrics=ns.metrics,
                connect_concurrency=ns.connect_concurrency,
            )
            for n in ns.sessions
            for impl in impls
        ]
    else:
        name = "quick" if ns.quick else "full"
        plan = suite(ns.quick, impls, groups)
    c_impl = "c" if "c" in impls else impls[0]
    runner.total = len(plan) + (
        len(RAMP_QUICK if ns.quick else RAMP_FULL) if "ramp" in groups and not ns.sessions else 0
    )
    runner.total += 1 if ns.profile else 0
    for scenario in plan:
        runner.run(scenario)
    if "ramp" in groups and not ns.sessions:
        runner.ramp(ns.quick, c_impl)
    profile_text = None
    if ns.profile:
        from fastproxy.tools import bench_profile

        profile_text = bench_profile.profile(runner, ns.profile, quick=ns.quick, impl=c_impl)
    status = _finish(runner.results, runner.failed, name, None, None, argv)
    if profile_text:
        print(profile_text)
    doc = bench_report.document(runner.results, name, argv)
    return doc, status


def run_cli(ns: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """``fastproxy bench``: run (or load) a suite; then --json, --plot, --save, --compare."""
    try:
        if ns.results:
            doc = bench_compare.load_document(ns.results)
            results = doc.get("results") or []
            if results:
                print(format_table(results))
                print(bench_tables.format_summary(bench_report.summarize_run(results), results))
            status = 0
        else:
            doc, status = _run_load(ns, argv)
    except ValueError as exc:
        print(f"fastproxy bench: error: {exc}", file=sys.stderr)
        return 2
    if ns.markdown:
        print(bench_tables.format_markdown(doc.get("results") or [], doc))
    if ns.json and not ns.results:
        Path(ns.json).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"bench: wrote {ns.json}", file=sys.stderr)
    if ns.plot:
        try:
            from fastproxy.tools.bench_plot import plot

            plot(doc.get("results") or [], ns.plot, title=_plot_title(doc))
            print(f"bench: wrote {ns.plot}", file=sys.stderr)
        except RuntimeError as exc:
            print(f"fastproxy bench: {exc}", file=sys.stderr)
            status = status or 1
    if ns.save:
        try:
            path = bench_compare.save_baseline(doc, ns.save, ns.baselines_dir)
        except (ValueError, OSError) as exc:
            print(f"fastproxy bench: --save: {exc}", file=sys.stderr)
            return 2
        print(f"bench: saved baseline {ns.save!r} to {path}", file=sys.stderr)
    if ns.compare:
        try:
            path = bench_compare.baseline_path(ns.compare, ns.baselines_dir)
            baseline = bench_compare.load_document(path)
        except ValueError as exc:
            print(f"fastproxy bench: --compare: {exc}", file=sys.stderr)
            return 2
        comparison = bench_compare.compare(baseline, doc, ns.threshold)
        print(bench_compare.format_comparison(comparison, ns.compare))
        if not comparison.ok:
            return 1
    return status


def _plot_title(doc: dict[str, Any]) -> str:
    machine = doc.get("machine", {})
    return (
        f"fastproxy bench ({doc.get('suite', '?')} suite, {doc.get('created', '')}; "
        f"{machine.get('cpus', '?')} CPUs, proxy pinned to one)"
    )


def parser(prog: str = "fastproxy bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="fastproxy end-to-end load benchmark: the real proxy between a mock "
        "upstream (echo) and one load generator process, on loopback.",
        allow_abbrev=False,
    )
    return add_arguments(p)


def run(
    quick: bool = False,
    save: str | None = None,
    compare: str | None = None,
    threshold: float = 10.0,
    plot: str | None = None,
    **options: Any,
) -> int:
    """``fastproxy bench`` (the CLI passes every option): ``quick``, ``save``, ``compare``,
    ``threshold``, ``plot``, and the others by their ``--long-name`` with ``_`` (``impl="c,py"``,
    ``only="ramp"``, ``results="run.json"``, ``workers=2`` ...); returns the exit status."""
    ns = parser().parse_args([])
    ns.quick, ns.save, ns.compare, ns.threshold, ns.plot = quick, save, compare, threshold, plot
    for key, value in options.items():
        if not hasattr(ns, key):
            raise TypeError(f"run() got an unexpected option {key!r}")
        setattr(ns, key, value)
    return run_cli(ns)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``benchmarks/e2e_load.py`` command line (same options as ``fastproxy bench``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    ns = parser("benchmarks/e2e_load.py").parse_args(args)
    return run_cli(ns, args)


if __name__ == "__main__":
    sys.exit(main())
