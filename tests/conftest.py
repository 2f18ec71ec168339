"""Puts ``tests/`` on ``sys.path``, so every suite can ``import spec_examples``.

``tests/spec_examples.py`` holds the example payloads of PROTOCOL.md §13 that both the Session-level
scenario tests (``tests/unit``, via ``harness``) and the socket-level conformance tests
(``tests/conformance``, via ``e2e_kit``) use. The test directories have no ``__init__.py``, so
pytest's default import mode only puts each test file's own directory on ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
