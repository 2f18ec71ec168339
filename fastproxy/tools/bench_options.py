"""The options of ``fastproxy bench`` (and ``benchmarks/e2e_load.py``), defined once.

Only argparse here, so ``fastproxy --help`` can build its parser without importing the benchmark
(which imports picows). :func:`fastproxy.tools.bench.run_cli` consumes the namespace.
"""

from __future__ import annotations

import argparse

__all__ = ["GROUPS", "add_arguments"]

GROUPS = ("passthrough", "resample", "mulaw", "metrics", "idle", "setup", "ramp")

_EPILOG = """\
suite groups (--only): passthrough (24 kHz, 100 and 300 sessions, compiled and twin),
resample (16 kHz client), mulaw, metrics (on vs off, alternating runs), idle (1,000 idle
sessions: RSS per session), setup (session setups per second), ramp (largest session count
holding real time: p99 < 50 ms and 0 lost).

examples:
  fastproxy bench --quick                          # < 3 minutes
  fastproxy bench --json run.json --plot run.png   # the full suite, < 15 minutes
  fastproxy bench --save main                      # store benchmarks/baselines/main.json
  fastproxy bench --compare main --threshold 10    # exit 1 naming each regressed figure
  fastproxy bench --results run.json --compare main  # compare a saved run, no load
  fastproxy bench --results run.json --markdown    # the README's figures table
  fastproxy bench --sessions 300 --seconds 20 --impl c,py --audio 16k   # one custom shape
  fastproxy bench --profile profile.svg            # py-spy flame graph of the proxy under load
"""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number >= 0")
    return value


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give session counts >= 1")
    return values


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the benchmark's options to ``p`` (an argparse parser or subparser)."""
    p.epilog = _EPILOG
    if p.formatter_class is argparse.HelpFormatter:  # keep the caller's formatter if it has one
        p.formatter_class = argparse.RawDescriptionHelpFormatter
    run = p.add_argument_group("what to run")
    run.add_argument("--quick", action="store_true", help="the short suite (< 3 minutes)")
    run.add_argument(
        "--only",
        metavar="GROUPS",
        default=None,
        help=f"comma-separated suite groups to run ({','.join(GROUPS)}); default all",
    )
    run.add_argument(
        "--impl",
        default=None,
        help="c, py or c,py: the relay builds to run (py = FASTPROXY_NO_EXTENSIONS=1 twin); "
        "default c,py for the suite's comparison groups and custom runs",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="pass --workers N to the proxy (N > 1: not pinned, CPU summed over workers)",
    )
    run.add_argument(
        "--max-runtime",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="skip scenarios that would end past this (default 840, --quick 160)",
    )
    custom = p.add_argument_group("a custom streaming run instead of the suite")
    custom.add_argument("--sessions", type=_int_list, default=None, metavar="N[,N...]")
    custom.add_argument("--seconds", type=_positive_float, default=20.0, help="incl. warm-up")
    custom.add_argument("--warmup", type=_non_negative_float, default=5.0, help="unmeasured s")
    custom.add_argument("--rate", type=_positive_float, default=50.0, help="frames/s per session")
    custom.add_argument("--audio", choices=("24k", "16k", "mulaw"), default="24k")
    custom.add_argument("--connect-concurrency", type=int, default=50, metavar="N")
    custom.add_argument(
        "--no-metrics",
        dest="metrics",
        action="store_false",
        help="pass --no-metrics to the proxy (measure the metrics' cost)",
    )
    out = p.add_argument_group("results, baselines and pictures")
    out.add_argument("--json", metavar="PATH", default=None, help="write the run as JSON")
    out.add_argument(
        "--results",
        metavar="PATH",
        default=None,
        help="do not run: use this JSON (from --json) for --compare, --save and --plot",
    )
    out.add_argument(
        "--save", metavar="NAME", default=None, help="store as benchmarks/baselines/NAME.json"
    )
    out.add_argument(
        "--compare",
        metavar="NAME",
        default=None,
        help="compare with baseline NAME; exit 1 naming each figure regressed past --threshold",
    )
    out.add_argument(
        "--threshold",
        type=_non_negative_float,
        default=10.0,
        metavar="PERCENT",
        help="with --compare: allowed regression per figure (default %(default)s)",
    )
    out.add_argument(
        "--baselines-dir",
        metavar="DIR",
        default=None,
        help="where baselines live (default benchmarks/baselines in the checkout)",
    )
    out.add_argument(
        "--plot", metavar="PATH", default=None, help="latency and CPU per frame vs sessions"
    )
    out.add_argument(
        "--markdown",
        action="store_true",
        help="print the figures as the README's Markdown table (with --results: no run)",
    )
    out.add_argument(
        "--profile",
        metavar="PATH",
        default=None,
        help="profile the proxy under load with py-spy: flame graph PATH (.svg), summary and "
        "collapsed stacks beside it (.txt, .collapsed), the twin's as PATH-py; runs only the "
        "profile unless --only is given",
    )
    return p
