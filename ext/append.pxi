# Append framing: PCM bytes -> the exact text of one `input_audio_buffer.append` event
# (PROTOCOL.md §9.1 A1/A2), base64-encoded straight into a buffer the caller owns or into a
# new bytes object, with no JSON library and no intermediate objects.
#
# Self-contained part: a module that `include`s it gets the C helpers `_ap_*` and the cdef
# class `AppendFramer`. The pure-Python twin is fastproxy/audio/_audio_py.py; keep the two
# byte-identical (tests/parity).

from libc.stdint cimport uint8_t, uint32_t
from libc.string cimport memcpy
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE

cdef enum:
    _AP_HEADROOM = 14          # picows writes the 2-14 byte WS frame header in front
    _AP_MAX_APPEND_BYTES = 11534336  # §9.1 A1/A4: largest PCM piece per append (11 MiB)
    _AP_PREFIX_LEN = 45
    _AP_OVERHEAD = 47          # prefix + '"}'
    _AP_MIN_CAP = 8192         # covers a 100 ms 24 kHz append without growing
    _AP_SHRINK_ABOVE = 1048576 # after a huge append, give the memory back ...
    _AP_KEEP = 65536           # ... as soon as an append of at most this size comes

cdef const char* _AP_PREFIX = b'{"type":"input_audio_buffer.append","audio":"'
cdef const char* _AP_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

# Two base64 characters per 12 input bits: one table lookup per half of a 3-byte group.
cdef unsigned char _ap_pairs[8192]


cdef void _ap_init_tables() noexcept:
    cdef int i
    for i in range(4096):
        _ap_pairs[2 * i] = <unsigned char>_AP_B64[i >> 6]
        _ap_pairs[2 * i + 1] = <unsigned char>_AP_B64[i & 63]


_ap_init_tables()


cdef inline Py_ssize_t _ap_event_len(Py_ssize_t n) noexcept nogil:
    """Length of the append event text for n PCM bytes."""
    return _AP_OVERHEAD + (n + 2) // 3 * 4


cdef Py_ssize_t _ap_b64_encode(const uint8_t* src, Py_ssize_t n, uint8_t* dst) noexcept nogil:
    """RFC 4648 base64 with padding of src[:n] into dst; returns the number of bytes written."""
    cdef const uint8_t* end3 = src + (n - n % 3)
    cdef uint8_t* d = dst
    cdef uint32_t v
    cdef Py_ssize_t rem = n % 3
    # Two groups (6 bytes -> 8 chars) per iteration: more independent work per loop test.
    while end3 - src >= 6:
        v = (<uint32_t>src[0] << 16) | (<uint32_t>src[1] << 8) | src[2]
        memcpy(d, &_ap_pairs[(v >> 12) << 1], 2)
        memcpy(d + 2, &_ap_pairs[(v & 0xFFF) << 1], 2)
        v = (<uint32_t>src[3] << 16) | (<uint32_t>src[4] << 8) | src[5]
        memcpy(d + 4, &_ap_pairs[(v >> 12) << 1], 2)
        memcpy(d + 6, &_ap_pairs[(v & 0xFFF) << 1], 2)
        src += 6
        d += 8
    if src < end3:
        v = (<uint32_t>src[0] << 16) | (<uint32_t>src[1] << 8) | src[2]
        memcpy(d, &_ap_pairs[(v >> 12) << 1], 2)
        memcpy(d + 2, &_ap_pairs[(v & 0xFFF) << 1], 2)
        src += 3
        d += 4
    if rem == 1:
        v = <uint32_t>src[0] << 16
        d[0] = <uint8_t>_AP_B64[v >> 18]
        d[1] = <uint8_t>_AP_B64[(v >> 12) & 63]
        d[2] = 61  # '='
        d[3] = 61
        d += 4
    elif rem == 2:
        v = (<uint32_t>src[0] << 16) | (<uint32_t>src[1] << 8)
        d[0] = <uint8_t>_AP_B64[v >> 18]
        d[1] = <uint8_t>_AP_B64[(v >> 12) & 63]
        d[2] = <uint8_t>_AP_B64[(v >> 6) & 63]
        d[3] = 61
        d += 4
    return d - dst


cdef inline Py_ssize_t _ap_write_event(const uint8_t* pcm, Py_ssize_t n, uint8_t* dst) noexcept nogil:
    """Write the whole append event for pcm[:n] at dst (_ap_event_len(n) bytes); returns it."""
    cdef Py_ssize_t k
    memcpy(dst, _AP_PREFIX, _AP_PREFIX_LEN)
    k = _AP_PREFIX_LEN + _ap_b64_encode(pcm, n, dst + _AP_PREFIX_LEN)
    dst[k] = 34      # '"'
    dst[k + 1] = 125  # '}'
    return k + 2


cdef class AppendFramer:
    """Reusable buffer holding one append event with HEADROOM free bytes in front.

    C-level use (the relay)::

        n = framer.write(pcm_ptr, pcm_len)      # -> framer.payload[:n], n == framer.payload_len
        transport.send_reuse_external_buffer(WSMsgType.TEXT, framer.payload, n)

    ``payload`` always has at least HEADROOM writable bytes before it. The whole event is
    rewritten on every call (picows masks client-side payloads in place, so nothing in the
    buffer may be assumed to survive a send). ``write`` frames exactly one event: splitting at
    MAX_APPEND_BYTES is the caller's job. ``payload`` may move when the buffer grows.
    """

    cdef uint8_t* _mem
    cdef Py_ssize_t _cap
    cdef uint8_t* payload
    cdef Py_ssize_t payload_len

    def __cinit__(self):
        self._mem = NULL
        self._cap = 0
        self.payload = NULL
        self.payload_len = 0

    def __dealloc__(self):
        PyMem_Free(self._mem)

    cdef int _reserve(self, Py_ssize_t need) except -1:
        cdef Py_ssize_t cap
        cdef uint8_t* mem
        if need <= self._cap and not (self._cap > _AP_SHRINK_ABOVE and need <= _AP_KEEP):
            return 0
        cap = need if need > _AP_MIN_CAP else _AP_MIN_CAP
        mem = <uint8_t*>PyMem_Malloc(cap)
        if mem == NULL:
            raise MemoryError()
        PyMem_Free(self._mem)
        self._mem = mem
        self._cap = cap
        self.payload = mem + _AP_HEADROOM
        self.payload_len = 0
        return 0

    cdef Py_ssize_t write(self, const char* pcm, Py_ssize_t n) except -1:
        """Frame pcm[:n] as one append event at self.payload; returns (and stores) its length."""
        if n < 0 or <size_t>n > (<size_t>-1) >> 3:
            raise MemoryError()
        self._reserve(_AP_HEADROOM + _ap_event_len(n))
        self.payload_len = _ap_write_event(<const uint8_t*>pcm, n, self.payload)
        return self.payload_len

    @property
    def headroom(self) -> int:
        """Free bytes in front of the payload (always >= HEADROOM once a frame was written)."""
        return <Py_ssize_t>(self.payload - self._mem) if self._mem != NULL else _AP_HEADROOM

    def frame(self, pcm) -> bytes:
        """The append event for all of ``pcm`` (one event, no splitting), as bytes."""
        cdef Py_buffer view
        PyObject_GetBuffer(pcm, &view, PyBUF_SIMPLE)
        try:
            self.write(<const char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        return (<char*>self.payload)[:self.payload_len]
