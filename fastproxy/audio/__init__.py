"""Audio hot-path kernels: the compiled module, or its pure-Python twin on explicit request.

Owns the choice between ``fastproxy.audio._audio_c`` (Cython, ext/*.pxi) and
``fastproxy.audio._audio_py`` (the behavioural spec; byte-identical, slower). The compiled
module is required unless FASTPROXY_NO_EXTENSIONS=1: a silent fallback would cost every
session several times the CPU, so a missing build fails loudly at import instead.

API (PROTOCOL.md §9): ``encode_appends``, ``AppendFramer``, ``scan_delta``, ``DeltaScanner``,
``Resampler``, constants ``MAX_APPEND_BYTES``, ``HEADROOM`` and ``IMPLEMENTATION`` ("c"|"py").
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

__all__ = [
    "HEADROOM",
    "IMPLEMENTATION",
    "MAX_APPEND_BYTES",
    "AppendFramer",
    "DeltaScanner",
    "Resampler",
    "encode_appends",
    "scan_delta",
]

if TYPE_CHECKING:
    # The stub types the compiled module; the twin has the same surface (tests/parity).
    from fastproxy.audio._audio_c import (
        HEADROOM,
        IMPLEMENTATION,
        MAX_APPEND_BYTES,
        AppendFramer,
        DeltaScanner,
        Resampler,
        encode_appends,
        scan_delta,
    )
elif os.environ.get("FASTPROXY_NO_EXTENSIONS") == "1":
    from fastproxy.audio._audio_py import (
        HEADROOM,
        IMPLEMENTATION,
        MAX_APPEND_BYTES,
        AppendFramer,
        DeltaScanner,
        Resampler,
        encode_appends,
        scan_delta,
    )
else:
    try:
        from fastproxy.audio._audio_c import (
            HEADROOM,
            IMPLEMENTATION,
            MAX_APPEND_BYTES,
            AppendFramer,
            DeltaScanner,
            Resampler,
            encode_appends,
            scan_delta,
        )
    except ImportError as exc:
        raise ImportError(
            "fastproxy.audio: the compiled extension fastproxy.audio._audio_c is not built or "
            f"cannot be loaded ({exc}). Build it with `pip install -e .` (or "
            "`python setup.py build_ext --inplace` in a checkout), or set "
            "FASTPROXY_NO_EXTENSIONS=1 to run on the much slower pure-Python twin on purpose."
        ) from exc
