"""Shared inputs for the kernel micro-benchmarks (opt-in: ``pytest benchmarks/``)."""

from __future__ import annotations

import base64
import json
import os
import random
from collections.abc import Callable
from types import ModuleType

import pytest


def _pcm(size: int) -> bytes:
    """Deterministic speech-like PCM16LE (so runs compare like for like)."""
    rng = random.Random(size)
    return b"".join(
        rng.randint(-8000, 8000).to_bytes(2, "little", signed=True) for _ in range(size // 2)
    )


def _delta_frame(data: bytes) -> bytes:
    """A response.output_audio.delta exactly as the real API shapes it (keys and order)."""
    return json.dumps(
        {
            "type": "response.output_audio.delta",
            "event_id": "event_kJDFWvEVy6L3IGxBSGHxT",
            "response_id": "resp_jI83PNJnlhuuCmzLgh1cs",
            "item_id": "item_DZiUSO2Gle7meNfio5VXP",
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(data).decode(),
        },
        separators=(",", ":"),
    ).encode()


def _load_impl(name: str) -> ModuleType:
    if name == "py":
        from fastproxy.audio import _audio_py

        return _audio_py
    if os.environ.get("FASTPROXY_NO_EXTENSIONS") == "1":
        pytest.skip("compiled kernels disabled")
    from fastproxy.audio import _audio_c

    return _audio_c


@pytest.fixture
def pcm() -> Callable[[int], bytes]:
    """``pcm(size)``: deterministic speech-like PCM16LE of ``size`` bytes."""
    return _pcm


@pytest.fixture
def delta_frame() -> Callable[[bytes], bytes]:
    """``delta_frame(pcm)``: the upstream text frame carrying ``pcm`` as an audio delta."""
    return _delta_frame


@pytest.fixture
def impl() -> Callable[[str], ModuleType]:
    """``impl("c" | "py")``: the compiled kernels (skipped if disabled) or the twin."""
    return _load_impl
