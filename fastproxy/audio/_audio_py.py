"""Pure-Python twin of the compiled audio kernels (ext/*.pxi): the behavioural spec.

It owns the reference semantics of append framing (PROTOCOL.md §9.1), the audio-delta scanner
(§9.4) and the resampler (§9.2). ``fastproxy.audio`` uses it only with FASTPROXY_NO_EXTENSIONS=1;
tests/parity asserts that it and ``fastproxy.audio._audio_c`` agree byte for byte on every
input. Change both together. Standard library only (no numpy at run time).
"""

from __future__ import annotations

import array
import binascii
import re
import sys
from operator import mul
from typing import Final

from fastproxy.audio._filters import COEF_SHIFT, design

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

IMPLEMENTATION: Final = "py"
MAX_APPEND_BYTES: Final = 11534336
HEADROOM: Final = 14

_PREFIX: Final = b'{"type":"input_audio_buffer.append","audio":"'
_SUFFIX: Final = b'"}'
_BIG_ENDIAN: Final = sys.byteorder == "big"
_ROUND: Final = 1 << (COEF_SHIFT - 1)

_Buffer = bytes | bytearray | memoryview


def _view(data: _Buffer) -> memoryview:
    """A flat byte view of ``data``, refusing what PyBUF_SIMPLE refuses (as the C build does)."""
    mv = memoryview(data)
    if not mv.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


# --- append framing (§9.1) ------------------------------------------------------------------


def _event(piece: _Buffer) -> bytes:
    return _PREFIX + binascii.b2a_base64(piece, newline=False) + _SUFFIX


def encode_appends(pcm: _Buffer, *, max_bytes: int = MAX_APPEND_BYTES) -> list[bytes]:
    """The append events for ``pcm`` cut into pieces of at most ``max_bytes`` (A1), as bytes."""
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    mv = _view(pcm)
    n = len(mv)
    if n <= max_bytes:
        return [_event(mv)] if n else []
    return [_event(mv[i : i + max_bytes]) for i in range(0, n, max_bytes)]


class AppendFramer:
    """Twin of the compiled framer; in Python there is no buffer to reuse, only the event."""

    __slots__ = ()

    @property
    def headroom(self) -> int:
        return HEADROOM

    def frame(self, pcm: _Buffer) -> bytes:
        """The append event for all of ``pcm`` (one event, no splitting), as bytes."""
        return _event(_view(pcm))


# --- delta scanner (§9.4) -------------------------------------------------------------------
#
# A strict tokenizer over the top-level object only; nested values are validated and skipped.
# Regexes do the per-byte work (possessive quantifiers: linear time on any input) so that the
# twin stays usable as a fallback. The grammar and limits must match ext/scanner.pxi exactly.

_AUDIO_TYPE: Final = b"response.output_audio.delta"
_MAX_KEYS: Final = 64
_MAX_DEPTH: Final = 32
_WS = re.compile(rb"[ \t\n\r]*")
# "{" at the start of the frame.
_OPEN = re.compile(rb"[ \t\n\r]*\{[ \t\n\r]*")
# A top-level key and its colon. Keys must be plain: printable ASCII without '"' or '\'.
_KEY = re.compile(rb'"([\x20\x21\x23-\x5b\x5d-\x7e]*)"[ \t\n\r]*:[ \t\n\r]*')
# Any JSON string (escapes allowed, but no \u escape of a UTF-16 surrogate).
_STRING = (
    rb'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]++|\\["\\/bfnrt]|\\u(?![dD][89a-fA-F])[0-9a-fA-F]{4})*+"'
)
_SCALAR = re.compile(
    _STRING + rb"|-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?[0-9]++)?+|true|false|null"
)
_NESTED_KEY = re.compile(_STRING + rb"[ \t\n\r]*:[ \t\n\r]*")
# Fast path: a whole top-level member with a scalar value and what follows it, in one match.
# Groups: key, the value if it is a plain string (else None), the separator or closer.
_MEMBER = re.compile(
    rb'"([\x20\x21\x23-\x5b\x5d-\x7e]*+)"[ \t\n\r]*+:[ \t\n\r]*+'
    rb'(?:"([\x20\x21\x23-\x5b\x5d-\x7e]*+)"|'
    + _STRING
    + rb"|-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+(?:[eE][+-]?[0-9]++)?+|true|false|null)"
    rb"[ \t\n\r]*+([,}\]])[ \t\n\r]*+"
)
_WANTED: Final = frozenset((b"type", b"response_id", b"item_id", b"delta"))
# After a value: whitespace, a separator or closer, whitespace.
_SEP = re.compile(rb"[ \t\n\r]*([,}\]])[ \t\n\r]*")
# Last base64 character before "==" / "=" whose unused low bits are zero (canonical padding).
_PAD_OK: Final = (frozenset(b""), frozenset(b"AEIMQUYcgkosw048"), frozenset(b"AQgw"))
_OPEN_OBJ, _OPEN_ARR = 0x7B, 0x5B


def _b64_strict(s: bytes) -> bytes | None:
    """Decode strict base64: standard alphabet only, length % 4 == 0, at most two '=' and only
    at the end, zero pad bits. None if ``s`` is anything else."""
    if len(s) & 3:
        return None
    pad = 2 if s.endswith(b"==") else 1 if s.endswith(b"=") else 0
    try:
        data = binascii.a2b_base64(s, strict_mode=True)
    except binascii.Error:
        return None
    if pad and s[-pad - 1] not in _PAD_OK[pad]:  # also rejects a third '='
        return None
    return data


def _skip_value(buf: bytes, p: int, depth: int) -> int:
    """Validate and skip one JSON value at ``p`` (``depth`` 1 = member of the top-level object).
    Returns the index after it (possibly after trailing whitespace), or -1."""
    m = _SCALAR.match(buf, p)
    if m is not None:
        return m.end()
    if p >= len(buf) or buf[p] not in (_OPEN_OBJ, _OPEN_ARR) or depth > _MAX_DEPTH:
        return -1
    is_obj = buf[p] == _OPEN_OBJ
    close = buf[p] + 2  # '}' or ']'
    m = _WS.match(buf, p + 1)
    p = m.end() if m else p + 1
    if p < len(buf) and buf[p] == close:
        return p + 1
    while True:
        if is_obj:
            m = _NESTED_KEY.match(buf, p)
            if m is None:
                return -1
            p = m.end()
        p = _skip_value(buf, p, depth + 1)
        if p < 0:
            return -1
        m = _SEP.match(buf, p)
        if m is None:
            return -1
        if m[1] == b",":
            p = m.end()
        elif m[1][0] == close:
            return m.end()
        else:
            return -1


def _scan(buf: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(response_id, item_id, pcm) as bytes if ``buf`` is an audio delta frame, else None."""
    if not buf.isascii():  # the grammar rejects these too; this just fails fast
        return None
    m = _OPEN.match(buf)
    if m is None:
        return None
    p = m.end()
    n = len(buf)
    keys: set[bytes] = set()
    have_type = False
    rid: bytes | None = None
    iid: bytes | None = None
    pcm: bytes | None = None
    while True:
        m = _MEMBER.match(buf, p)
        if m is not None:
            key, value, sep = m[1], m[2], m[3]
            p = m.end()
        else:
            # Not "key: scalar, ": a container value, or invalid. Only other keys may have one.
            m = _KEY.match(buf, p)
            if m is None or m[1] in _WANTED:
                return None
            key, value = m[1], None
            p = _skip_value(buf, m.end(), 1)
            if p < 0:
                return None
            m = _SEP.match(buf, p)
            if m is None:
                return None
            sep = m[1]
            p = m.end()
        if key in keys or len(keys) == _MAX_KEYS:
            return None
        keys.add(key)
        if key in _WANTED:
            if value is None:  # the four wanted values must be plain strings
                return None
            if key == b"delta":
                pcm = _b64_strict(value)
                if pcm is None:
                    return None
            elif key == b"type":
                if value != _AUDIO_TYPE:
                    return None
                have_type = True
            elif key == b"response_id":
                rid = value
            else:
                iid = value
        if sep == b"}":
            if p != n:
                return None
            break
        if sep != b",":
            return None
    if not have_type or rid is None or iid is None or pcm is None:
        return None
    return rid, iid, pcm


def scan_delta(frame: _Buffer) -> tuple[str, str, bytes] | None:
    """``(response_id, item_id, pcm)`` if ``frame`` is a response.output_audio.delta, else None.

    None means "not audio here": the frame goes to the msgspec control path. Never wrong: any
    frame this accepts is valid JSON whose ``type``, ``response_id``, ``item_id`` and ``delta``
    are exactly what is returned.
    """
    buf = frame if type(frame) is bytes else _view(frame).tobytes()
    r = _scan(buf)
    if r is None:
        return None
    return r[0].decode("ascii"), r[1].decode("ascii"), r[2]


class DeltaScanner:
    """Twin of the compiled scanner's Python surface."""

    __slots__ = ()

    @property
    def headroom(self) -> int:
        return HEADROOM

    def scan_frame(self, frame: _Buffer) -> tuple[str, str, bytes] | None:
        return scan_delta(frame)


# --- resampler (§9.2) -----------------------------------------------------------------------


class Resampler:
    """Stateful PCM16LE mono converter (24000 <-> a client rate); see ext/resampler.pxi."""

    __slots__ = (
        "_carry",
        "_coefs",
        "_down",
        "_hist",
        "_passthrough",
        "_phase",
        "_rem",
        "_stepq",
        "_stepr",
        "_taps",
        "_up",
        "delay",
        "in_rate",
        "out_rate",
    )

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._carry = b""
        self._rem = 0
        self._passthrough = in_rate == out_rate == 24000
        self._hist: list[int] = []
        self._coefs: tuple[tuple[int, ...], ...] = ()
        self.delay = 0
        self._up = self._down = 1
        self._taps = self._stepq = self._stepr = self._phase = 0
        if self._passthrough:
            return
        d = design(in_rate, out_rate)
        self._coefs = d.phases
        self._up, self._down, self._taps, self.delay = d.up, d.down, d.taps, d.delay
        self._stepq, self._stepr = divmod(d.down, d.up)
        t0 = d.half_len - d.delay * d.down
        k0, self._phase = divmod(t0, d.up)
        self._hist = [0] * (d.taps - 1 - k0)

    @property
    def headroom(self) -> int:
        return HEADROOM

    def process(self, data: _Buffer) -> bytes:
        """Convert a chunk of PCM16LE bytes; returns the output bytes it makes due (RS3)."""
        raw = self._carry + _view(data).tobytes() if self._carry else _view(data).tobytes()
        if len(raw) & 1:
            raw, self._carry = raw[:-1], raw[-1:]
        else:
            self._carry = b""
        if self._passthrough:
            return raw
        samples = array.array("h", raw)
        if _BIG_ENDIAN:
            samples.byteswap()
        hist = self._hist
        hist.extend(samples)
        v = self._rem + len(samples) * self._up
        count, self._rem = divmod(v, self._down)
        out = array.array("h", bytes(2 * count))
        coefs, taps, up = self._coefs, self._taps, self._up
        stepq, stepr, phase = self._stepq, self._stepr, self._phase
        pos = 0
        for i in range(count):
            # Exact integers; equal to C's int32 sum because _filters proves it cannot overflow.
            acc = (sum(map(mul, coefs[phase], hist[pos : pos + taps])) + _ROUND) >> COEF_SHIFT
            out[i] = 32767 if acc > 32767 else -32768 if acc < -32768 else acc
            phase += stepr
            pos += stepq
            if phase >= up:
                phase -= up
                pos += 1
        self._phase = phase
        del hist[:pos]
        if _BIG_ENDIAN:
            out.byteswap()
        return out.tobytes()
