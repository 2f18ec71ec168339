"""Selects the audio relay: the compiled ``fastproxy.net._relay_c`` or its pure-Python twin.

The choice follows fastproxy.audio: compiled unless ``FASTPROXY_NO_EXTENSIONS=1``, and a
missing compiled module is a loud error rather than a silent fallback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastproxy import audio

if TYPE_CHECKING or audio.IMPLEMENTATION == "py":
    from fastproxy.net.relay_py import Relay
else:  # pragma: no cover - exercised by the compiled build
    try:
        from fastproxy.net._relay_c import Relay
    except ImportError as exc:  # the relay is built by the same setup.py as the kernels
        raise ImportError(
            "fastproxy's compiled relay (fastproxy.net._relay_c) is missing although the audio "
            "kernels are compiled; rebuild with `pip install -e .`, or set "
            "FASTPROXY_NO_EXTENSIONS=1 to run the pure-Python twin."
        ) from exc

IMPLEMENTATION = audio.IMPLEMENTATION

__all__ = ["IMPLEMENTATION", "Relay"]
