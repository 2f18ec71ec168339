# cython: language_level=3
"""Compiled audio hot-path kernels: fastproxy.audio._audio_c.

The module root only assembles the self-contained parts (a relay module includes the same
.pxi files to call the cdef classes at C level) and adds the module-level Python API; its
behavioural spec is the pure-Python twin fastproxy/audio/_audio_py.py, and tests/parity keeps
the two byte-identical. Public surface: see fastproxy/audio/_audio_c.pyi.
"""

include "append.pxi"
include "scanner.pxi"
include "resampler.pxi"

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING

IMPLEMENTATION = "c"
MAX_APPEND_BYTES = _AP_MAX_APPEND_BYTES
HEADROOM = _AP_HEADROOM

# scan_delta reuses one scanner; a re-entrant call (a finalizer run by the allocations that
# build the result) gets its own, so the first call's result can never be clobbered.
cdef DeltaScanner _shared_scanner = DeltaScanner()
cdef bint _shared_scanner_busy = False


def encode_appends(pcm, *, Py_ssize_t max_bytes=MAX_APPEND_BYTES):
    """The append events for ``pcm`` cut into pieces of at most ``max_bytes`` (A1), as bytes."""
    cdef Py_buffer view
    cdef list events = []
    cdef Py_ssize_t start, piece
    cdef bytes ev
    if max_bytes <= 0:
        raise ValueError("max_bytes must be positive")
    PyObject_GetBuffer(pcm, &view, PyBUF_SIMPLE)
    try:
        start = 0
        while start < view.len:
            piece = view.len - start
            if piece > max_bytes:
                piece = max_bytes
            ev = PyBytes_FromStringAndSize(NULL, _ap_event_len(piece))
            _ap_write_event(<const uint8_t*>view.buf + start, piece,
                            <uint8_t*>PyBytes_AS_STRING(ev))
            events.append(ev)
            start += piece
    finally:
        PyBuffer_Release(&view)
    return events


def scan_delta(frame):
    """``(response_id, item_id, pcm)`` if ``frame`` is a response.output_audio.delta, else None."""
    global _shared_scanner_busy
    cdef Py_buffer view
    cdef DeltaScanner sc
    cdef bint owner = not _shared_scanner_busy
    sc = _shared_scanner if owner else DeltaScanner()
    PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
    _shared_scanner_busy = True
    try:
        if sc.scan(<const char*>view.buf, view.len):
            return sc.result()
        return None
    finally:
        if owner:
            _shared_scanner_busy = False
        PyBuffer_Release(&view)
