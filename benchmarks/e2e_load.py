"""End-to-end load benchmark: ``python benchmarks/e2e_load.py [options]`` = ``fastproxy bench``.

Starts the mock upstream (echo mode), the real proxy (pinned to its own CPU when possible) and one
load generator process, and runs the benchmark suite (or one custom shape with ``--sessions``):
proxy CPU µs per relayed frame, frames sent/received/lost, round-trip percentiles, proxy RSS
(per streaming and per idle session), session setups per second, the largest session count
holding real time, compiled relay vs pure-Python twin and metrics on vs off in the same run.
``--save``/``--compare``/``--plot``/``--profile`` as documented in ``--help`` and the README's
"Performance" section. The implementation lives in :mod:`fastproxy.tools.bench`; this file is the
script and an importable runner::

    from benchmarks.e2e_load import Scenario, run_scenario, format_table
    print(format_table([run_scenario(Scenario(sessions=100, seconds=10, impl="py"))]))

Not collected by pytest (the name does not start with ``test_``): it takes minutes and wants the
machine to itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a checkout: make `fastproxy` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastproxy.tools.bench import (
    DEFAULT,
    QUICK,
    Scenario,
    format_table,
    main,
    run_all,
    run_scenario,
    suite,
)

__all__ = [
    "DEFAULT",
    "QUICK",
    "Scenario",
    "format_table",
    "main",
    "run_all",
    "run_scenario",
    "suite",
]

if __name__ == "__main__":
    sys.exit(main())
