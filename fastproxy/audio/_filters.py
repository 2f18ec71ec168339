"""Resampler filter design shared by the compiled kernel and the pure-Python twin.

This module owns the one place where floating point touches the resampler: it reproduces
``scipy.signal.resample_poly``'s default low-pass design (``firwin`` with a Kaiser window,
beta 5.0, ``half_len = 10 * max(L, M)``, cutoff ``1 / max(L, M)``, gain ``L``) in pure Python
(no numpy/scipy at run time), splits it into ``L`` polyphase branches and quantises every tap
to a signed 16-bit integer in Q14. Both implementations then run the *same integer* filter with
an int32 accumulator, so their outputs are byte-identical by construction (PROTOCOL.md §9.2
RS5) while matching the floating-point reference to far better than RS6's 50 dB.

Why int16/Q14 and not int32/Q20: a 16x16->32 multiply-accumulate is what SSE2 ``pmaddwd``
does eight lanes at a time, which keeps 16 kHz -> 24 kHz of a 20 ms frame well under 5 us.
Q14 (not Q15) because the centre tap of an interpolation branch is ~1.0. Coefficient rounding
costs about -80 dB, and :func:`design` proves per branch that the accumulator cannot
overflow, so int32 C arithmetic and Python's exact integers agree on every input.
"""

from __future__ import annotations

import array
import math
from dataclasses import dataclass
from functools import cache
from math import gcd

__all__ = [
    "BASE_RATE",
    "COEF_SHIFT",
    "KAISER_BETA",
    "SUPPORTED_RATES",
    "FilterDesign",
    "design",
    "prototype",
]

BASE_RATE = 24000
"""The only PCM rate the upstream accepts; every conversion has it on one side."""

SUPPORTED_RATES = (8000, 16000, 22050, 32000, 44100, 48000)
"""Client linear16 rates other than BASE_RATE (PROTOCOL.md §4.4)."""

COEF_SHIFT = 14
"""Taps are integers scaled by ``2**COEF_SHIFT``; outputs are ``(acc + 2**13) >> 14``."""

KAISER_BETA = 5.0

_INT32_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class FilterDesign:
    """One rate pair's polyphase filter, ready for the integer kernel.

    Output sample ``n`` uses phase ``p`` and newest input ``k0`` where
    ``t = n*down - delay*down + half_len``, ``k0 = t // up``, ``p = t % up``, and is
    ``sum(phases[p][j] * x[k0 - taps + 1 + j] for j in range(taps))`` (``x[k] = 0`` for
    ``k < 0``), rounded by ``(acc + 2**13) >> 14`` and clamped to int16. ``y[n + delay]``
    then approximates ``resample_poly(x, up, down)[n]``.
    """

    in_rate: int
    out_rate: int
    up: int
    """L: upsampling factor (out_rate / in_rate reduced)."""
    down: int
    """M: downsampling factor."""
    half_len: int
    """Half length of the prototype filter, in taps at the upsampled rate."""
    taps: int
    """Taps per phase, padded with zeros to a multiple of 8 (oldest sample first)."""
    delay: int
    """Constant output delay d in output samples: ``ceil(half_len / down)``."""
    phases: tuple[tuple[int, ...], ...]
    """``up`` branches of ``taps`` Q14 integers, oldest input first."""
    packed: bytes
    """``phases`` flattened as native-endian int16, for the compiled kernel."""


def _bessel_i0(x: float) -> float:
    """Modified Bessel function of the first kind, order 0 (power series)."""
    half = x / 2.0
    term = 1.0
    total = 1.0
    k = 0
    while term > 1e-17 * total:
        k += 1
        term *= (half / k) ** 2
        total += term
    return total


def prototype(up: int, down: int) -> list[float]:
    """resample_poly's default filter for ``up/down`` (``firwin(...) * up``), as floats."""
    max_rate = max(up, down)
    cutoff = 1.0 / max_rate
    half_len = 10 * max_rate
    numtaps = 2 * half_len + 1
    alpha = 0.5 * (numtaps - 1)
    i0_beta = _bessel_i0(KAISER_BETA)
    taps: list[float] = []
    for n in range(numtaps):
        m = n - alpha
        x = cutoff * m
        sinc = 1.0 if x == 0 else math.sin(math.pi * x) / (math.pi * x)
        r = m / alpha
        window = _bessel_i0(KAISER_BETA * math.sqrt(max(0.0, 1.0 - r * r))) / i0_beta
        taps.append(cutoff * sinc * window)
    total = math.fsum(taps)
    return [t / total * up for t in taps]


def _validate_pair(in_rate: int, out_rate: int) -> None:
    ok = (in_rate == BASE_RATE and out_rate in SUPPORTED_RATES) or (
        out_rate == BASE_RATE and in_rate in SUPPORTED_RATES
    )
    if not ok:
        raise ValueError(
            f"unsupported resampling {in_rate} -> {out_rate} Hz: one side must be {BASE_RATE} "
            f"and the other one of {', '.join(map(str, SUPPORTED_RATES))}"
        )


@cache
def design(in_rate: int, out_rate: int) -> FilterDesign:
    """The integer polyphase filter for ``in_rate -> out_rate`` (cached: computed once per pair).

    Raises ValueError unless one rate is 24000 and the other a supported client rate.
    """
    _validate_pair(in_rate, out_rate)
    g = gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    half_len = 10 * max(up, down)
    h = prototype(up, down)
    scale = 1 << COEF_SHIFT
    q = [math.floor(v * scale + 0.5) for v in h]
    taps = -(-len(q) // up)
    taps = (taps + 7) // 8 * 8
    phases: list[tuple[int, ...]] = []
    for p in range(up):
        branch = [0] * taps
        i = 0
        while p + i * up < len(q):
            branch[taps - 1 - i] = q[p + i * up]
            i += 1
        # int32 safety: |acc| <= sum|c| * 32768 plus the rounding constant.
        if sum(abs(c) for c in branch) * 32768 + (scale >> 1) > _INT32_MAX:
            raise AssertionError(f"phase {p} of {in_rate}->{out_rate} could overflow int32")
        if any(not -32768 <= c <= 32767 for c in branch):
            raise AssertionError(f"phase {p} of {in_rate}->{out_rate} does not fit int16")
        phases.append(tuple(branch))
    delay = -(-half_len // down)
    packed = array.array("h", [c for branch in phases for c in branch]).tobytes()
    return FilterDesign(
        in_rate=in_rate,
        out_rate=out_rate,
        up=up,
        down=down,
        half_len=half_len,
        taps=taps,
        delay=delay,
        phases=tuple(phases),
        packed=packed,
    )
