"""Synthetic speech and a tiny energy VAD for the mock upstream.

The mock has no model, so its "speech" is a vowel-like harmonic tone: a glottal-ish pulse train
(f0 ≈ 120 Hz with a slow vibrato) shaped by three formant resonances, under a syllable-rate
amplitude envelope with soft attack and release. It is not intelligible, but it is band-limited,
non-stationary and clearly non-silent, which is what resamplers, level meters and VADs downstream
need. Generation is pure Python (no numpy at run time) and cached, because the default reply
reuses the same few hundred milliseconds for every response.

:class:`EnergyVad` is the mock's stand-in for the upstream's server VAD: RMS energy in 20 ms
windows of PCM16 mono, with a minimum speech run before ``speech_started`` and a silence run
before ``speech_stopped``.
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

SAMPLE_RATE = 24000
"""The Realtime API's PCM rate (``audio/pcm`` is 24 kHz, 16-bit little-endian, mono)."""
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # 48

_TABLE_SIZE = 2048
# Formants of an open vowel (roughly /a/): (centre Hz, bandwidth Hz, gain).
_FORMANTS = ((730.0, 130.0, 1.0), (1090.0, 150.0, 0.55), (2440.0, 220.0, 0.25))


def pcm_duration_ms(pcm_len: int) -> float:
    """Duration in ms of ``pcm_len`` bytes of PCM16 mono at 24 kHz."""
    return pcm_len / BYTES_PER_MS


def silence(duration_ms: int) -> bytes:
    """``duration_ms`` of digital silence (PCM16, 24 kHz)."""
    return bytes(duration_ms * BYTES_PER_MS)


@lru_cache(maxsize=8)
def _vowel_table(f0: float) -> tuple[float, ...]:
    """One period of the formant-weighted harmonic series for fundamental ``f0``, peak 1.0."""
    harmonics: list[tuple[int, float]] = []
    k = 1
    while k * f0 < 3800.0:
        f = k * f0
        gain = sum(g / (1.0 + ((f - fc) / bw) ** 2) for fc, bw, g in _FORMANTS)
        # A gentle spectral tilt so the fundamental is present but not dominant.
        harmonics.append((k, gain + 0.3 / k))
        k += 1
    table = [
        sum(a * math.sin(h * 2.0 * math.pi * i / _TABLE_SIZE) for h, a in harmonics)
        for i in range(_TABLE_SIZE)
    ]
    peak = max(abs(v) for v in table) or 1.0
    return tuple(v / peak for v in table)


@lru_cache(maxsize=32)
def synth_speech(duration_ms: int, *, f0: float = 120.0, level: float = 0.35) -> bytes:
    """``duration_ms`` of vowel-like speech as PCM16 LE mono at 24 kHz (cached, deterministic).

    ``level`` is the peak amplitude as a fraction of full scale.
    """
    n = duration_ms * SAMPLE_RATE // 1000
    table = _vowel_table(f0)
    attack = max(1, SAMPLE_RATE * 20 // 1000)
    release = max(1, SAMPLE_RATE * 40 // 1000)
    scale = 32767.0 * level
    out = array("h", bytes(2 * n))
    phase = 0.0
    step_base = _TABLE_SIZE * f0 / SAMPLE_RATE
    w = 2.0 * math.pi / SAMPLE_RATE  # radians per sample at 1 Hz
    for i in range(n):
        vibrato = 1.0 + 0.02 * math.sin(5.0 * w * i)
        phase = (phase + step_base * vibrato) % _TABLE_SIZE
        j = int(phase)
        frac = phase - j
        v = table[j] + (table[(j + 1) % _TABLE_SIZE] - table[j]) * frac
        # Syllable-rate modulation (~4 Hz) never drops to silence inside an utterance.
        env = 0.55 + 0.45 * math.sin(2.0 * w * i + 0.3) ** 2
        if i < attack:
            env *= i / attack
        elif i >= n - release:
            env *= (n - i) / release
        out[i] = int(v * env * scale)
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()


def pcm_rms(pcm: bytes | bytearray | memoryview) -> float:
    """RMS of PCM16 LE samples (0 for an empty buffer); a trailing odd byte is ignored."""
    usable = len(pcm) & ~1
    if usable == 0:
        return 0.0
    samples = array("h", bytes(pcm[:usable]))
    if sys.byteorder != "little":
        samples.byteswap()
    return math.sqrt(sum(s * s for s in samples) / len(samples))


@dataclass(frozen=True, slots=True)
class VadEvent:
    """A speech boundary found by :class:`EnergyVad`; ``ms`` counts from the first byte fed."""

    kind: Literal["start", "stop"]
    ms: int


class EnergyVad:
    """RMS-threshold voice activity detection over 20 ms windows of PCM16 LE 24 kHz.

    ``start`` is reported once ``min_speech_ms`` of consecutive loud windows have been seen, with
    ``ms`` = the beginning of that run; ``stop`` once ``silence_ms`` of consecutive quiet windows
    follow speech, with ``ms`` = the end of the last loud window. Chunks may split windows and
    samples anywhere: the remainder is carried to the next :meth:`feed`.
    """

    WINDOW_MS = 20

    def __init__(
        self, *, threshold_rms: float = 500.0, min_speech_ms: int = 60, silence_ms: int = 200
    ) -> None:
        self.threshold_rms = threshold_rms
        self.min_speech_windows = max(1, -(-min_speech_ms // self.WINDOW_MS))
        self.silence_windows = max(1, -(-silence_ms // self.WINDOW_MS))
        self._window_bytes = self.WINDOW_MS * BYTES_PER_MS
        self._carry = bytearray()
        self._windows = 0  # windows consumed so far
        self._loud_run = 0
        self._quiet_run = 0
        self._last_loud_end = 0
        self.speaking = False

    @property
    def position_ms(self) -> int:
        """Milliseconds of audio consumed into whole windows."""
        return self._windows * self.WINDOW_MS

    def reset(self) -> None:
        """Forget any speech in progress (the input buffer was cleared). Positions keep
        counting from the first byte ever fed, like the API's ``audio_start_ms``."""
        self._loud_run = 0
        self._quiet_run = 0
        self.speaking = False

    def feed(self, pcm: bytes | bytearray | memoryview) -> list[VadEvent]:
        """Consume ``pcm`` and return the boundaries it completes, in order."""
        self._carry += pcm
        events: list[VadEvent] = []
        wb = self._window_bytes
        offset = 0
        while len(self._carry) - offset >= wb:
            loud = pcm_rms(memoryview(self._carry)[offset : offset + wb]) >= self.threshold_rms
            offset += wb
            self._windows += 1
            if loud:
                self._loud_run += 1
                self._quiet_run = 0
                self._last_loud_end = self._windows * self.WINDOW_MS
                if not self.speaking and self._loud_run >= self.min_speech_windows:
                    self.speaking = True
                    start = (self._windows - self._loud_run) * self.WINDOW_MS
                    events.append(VadEvent("start", start))
            else:
                self._loud_run = 0
                if self.speaking:
                    self._quiet_run += 1
                    if self._quiet_run >= self.silence_windows:
                        self.speaking = False
                        self._quiet_run = 0
                        events.append(VadEvent("stop", self._last_loud_end))
        del self._carry[:offset]
        return events
