"""End-to-end load benchmark: ``python benchmarks/e2e_load.py [--quick] [--impl c,py] [--json P]``.

Starts the mock upstream (echo mode), the real proxy (pinned to its own CPU when possible) and one
load generator process driving ``--sessions`` sessions at ``--rate`` frames/s for ``--seconds``
(the first ``--warmup`` seconds unmeasured), then prints proxy CPU µs per relayed frame, frames
sent/received/lost, round-trip percentiles, proxy RSS, the load side's CPU and the session setup
rate. The implementation lives in :mod:`fastproxy.tools.bench` (``fastproxy bench`` runs the
default scenario); this file is the script and an importable runner::

    from benchmarks.e2e_load import Scenario, run_scenario
    result = run_scenario(Scenario(sessions=100, seconds=10, impl="py"))

Not collected by pytest (the name does not start with ``test_``): it takes tens of seconds and
wants the machine to itself.
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
)

__all__ = ["DEFAULT", "QUICK", "Scenario", "format_table", "main", "run_all", "run_scenario"]

if __name__ == "__main__":
    sys.exit(main())
