"""Shared set-up of the hardening suite: import paths and the fuzz-example tally.

The Session harness (tests/unit/harness.py) and the end-to-end kit (tests/conformance/e2e_kit.py)
are imported by module name, so their directories go on ``sys.path`` here. Every fuzz target
counts the examples it ran in ``hardening_kit.FUZZ_COUNTS`` and the chaos and soak tests put their
figures in ``hardening_kit.REPORT``; the terminal summary prints both, so a run reports "examples
per target", frames lost and leak figures (the long run of README "Hardening" shows its totals).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_TESTS = Path(__file__).resolve().parents[1]
for _sub in ("unit", "conformance", "hardening"):
    _path = str(_TESTS / _sub)
    if _path not in sys.path:
        sys.path.insert(0, _path)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from hardening_kit import FUZZ_COUNTS, REPORT

    if FUZZ_COUNTS:
        terminalreporter.section("hardening fuzz examples")
        for target, count in sorted(FUZZ_COUNTS.items()):
            terminalreporter.write_line(f"{target}: {count}")
    if REPORT:
        terminalreporter.section("hardening figures")
        for line in REPORT:
            terminalreporter.write_line(line)
