"""Type stub of the compiled kernels (ext/_audio_c.pyx + ext/*.pxi).

Python-visible surface only; the C-level API the relay uses (cdef methods and attributes) is
documented in the .pxi files. The pure-Python twin _audio_py.py has the same surface.
"""

from typing import Final, TypeAlias

_Buffer: TypeAlias = bytes | bytearray | memoryview

IMPLEMENTATION: Final[str]
MAX_APPEND_BYTES: Final[int]
HEADROOM: Final[int]

def encode_appends(pcm: _Buffer, *, max_bytes: int = ...) -> list[bytes]:
    """The `input_audio_buffer.append` events for ``pcm``, cut at ``max_bytes`` (§9.1 A1)."""

def scan_delta(frame: _Buffer) -> tuple[str, str, bytes] | None:
    """``(response_id, item_id, pcm)`` if ``frame`` is a response.output_audio.delta, else None."""

class AppendFramer:
    def __init__(self) -> None: ...
    @property
    def headroom(self) -> int: ...
    def frame(self, pcm: _Buffer) -> bytes:
        """The append event for all of ``pcm`` (one event, no splitting)."""

class DeltaScanner:
    def __init__(self) -> None: ...
    @property
    def headroom(self) -> int: ...
    def scan_frame(self, frame: _Buffer) -> tuple[str, str, bytes] | None:
        """Same result as ``scan_delta(frame)``, through this scanner's own buffer."""

class Resampler:
    def __init__(self, in_rate: int, out_rate: int) -> None: ...
    @property
    def in_rate(self) -> int: ...
    @property
    def out_rate(self) -> int: ...
    @property
    def delay(self) -> int:
        """Constant delay, in output samples, against scipy's resample_poly (RS6)."""
    @property
    def headroom(self) -> int: ...
    def process(self, data: _Buffer) -> bytes:
        """Convert a chunk of PCM16LE mono; returns the output it makes due (RS3)."""
