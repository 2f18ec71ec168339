# Delta scanner: recognise an upstream `response.output_audio.delta` text frame and decode its
# base64 audio in one pass, without building a JSON tree (PROTOCOL.md §9.4 O1).
#
# The rule is "never a wrong answer": anything unusual (non-ASCII, escapes in the keys or in the
# ids, duplicate top-level keys, bad base64, more than _SC_MAX_KEYS keys or _SC_MAX_DEPTH nested
# containers, invalid JSON anywhere, trailing bytes) is "not audio", and the frame takes the
# msgspec control path, which is slower but general. Skipped values are validated as strictly as
# a JSON parser would, so a frame is accepted here only if it is valid JSON.
#
# Self-contained part: a module that `include`s it gets the C helpers `_sc_*` and the cdef
# class `DeltaScanner`. Twin: fastproxy/audio/_audio_py.py (keep them in step; tests/parity).

from libc.stdint cimport uint8_t, uint32_t
from libc.string cimport memcmp
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE

cdef enum:
    _SC_HEADROOM = 14            # free bytes before the decoded PCM (picows frame header)
    _SC_MAX_KEYS = 64            # more top-level keys than this: not audio
    _SC_MAX_DEPTH = 32           # deeper nesting inside the top-level object: not audio
    _SC_BAD = 0x01000000         # flag bit set by the decode tables for a non-alphabet byte
    _SC_MIN_CAP = 8192
    _SC_SHRINK_ABOVE = 1048576
    _SC_KEEP = 65536
    # classes of a byte inside a JSON string
    _SC_CH_PLAIN = 0
    _SC_CH_QUOTE = 1
    _SC_CH_BACKSLASH = 2
    _SC_CH_BAD = 3               # control character, DEL or non-ASCII
    # top-level keys the scanner cares about
    _SC_K_OTHER = 0
    _SC_K_TYPE = 1
    _SC_K_RESPONSE_ID = 2
    _SC_K_ITEM_ID = 3
    _SC_K_DELTA = 4

cdef const char* _SC_AUDIO_TYPE = b"response.output_audio.delta"
cdef const char* _SC_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

cdef uint32_t _sc_d0[256]
cdef uint32_t _sc_d1[256]
cdef uint32_t _sc_d2[256]
cdef uint32_t _sc_d3[256]
cdef uint8_t _sc_val[256]     # base64 value, or 0xFF
cdef uint8_t _sc_class[256]   # _SC_CH_*
cdef uint8_t _sc_hex[256]     # 1 for [0-9a-fA-F]


cdef void _sc_init_tables() noexcept:
    cdef int i
    cdef uint32_t v
    for i in range(256):
        _sc_val[i] = 0xFF
        _sc_d0[i] = _SC_BAD
        _sc_d1[i] = _SC_BAD
        _sc_d2[i] = _SC_BAD
        _sc_d3[i] = _SC_BAD
        if i < 0x20 or i >= 0x7F:
            _sc_class[i] = _SC_CH_BAD
        elif i == 34:
            _sc_class[i] = _SC_CH_QUOTE
        elif i == 92:
            _sc_class[i] = _SC_CH_BACKSLASH
        else:
            _sc_class[i] = _SC_CH_PLAIN
        _sc_hex[i] = 1 if (48 <= i <= 57 or 65 <= i <= 70 or 97 <= i <= 102) else 0
    for i in range(64):
        v = <uint32_t>i
        _sc_val[<uint8_t>_SC_B64[i]] = <uint8_t>i
        _sc_d0[<uint8_t>_SC_B64[i]] = v << 18
        _sc_d1[<uint8_t>_SC_B64[i]] = v << 12
        _sc_d2[<uint8_t>_SC_B64[i]] = v << 6
        _sc_d3[<uint8_t>_SC_B64[i]] = v


_sc_init_tables()


cdef inline const uint8_t* _sc_ws(const uint8_t* p, const uint8_t* end) noexcept nogil:
    while p < end and (p[0] == 32 or p[0] == 10 or p[0] == 13 or p[0] == 9):
        p += 1
    return p


cdef inline const uint8_t* _sc_plain_string(const uint8_t* p, const uint8_t* end) noexcept nogil:
    """p is just after an opening quote. Returns the closing quote if the string has no
    escapes and only printable ASCII; NULL otherwise (or if truncated)."""
    cdef uint8_t c
    while p < end:
        c = _sc_class[p[0]]
        if c == _SC_CH_PLAIN:
            p += 1
        elif c == _SC_CH_QUOTE:
            return p
        else:
            return NULL
    return NULL


cdef const uint8_t* _sc_skip_string(const uint8_t* p, const uint8_t* end) noexcept nogil:
    """p is just after an opening quote. Validates a JSON string (escapes allowed, except
    \\u escapes of UTF-16 surrogates); returns the byte after the closing quote, or NULL."""
    cdef uint8_t c, e
    while p < end:
        c = _sc_class[p[0]]
        if c == _SC_CH_PLAIN:
            p += 1
        elif c == _SC_CH_QUOTE:
            return p + 1
        elif c == _SC_CH_BACKSLASH:
            if end - p < 2:
                return NULL
            e = p[1]
            if e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110 or e == 114 or e == 116:
                p += 2
            elif e == 117:  # \uXXXX
                if end - p < 6:
                    return NULL
                if not (_sc_hex[p[2]] and _sc_hex[p[3]] and _sc_hex[p[4]] and _sc_hex[p[5]]):
                    return NULL
                if (p[2] == 100 or p[2] == 68) and p[3] >= 56:
                    # \uD800-\uDFFF (surrogates): second hex digit is one of 89a-fA-F
                    return NULL
                p += 6
            else:
                return NULL
        else:
            return NULL
    return NULL


cdef inline bint _sc_digit(uint8_t c) noexcept nogil:
    return 48 <= c <= 57


cdef const uint8_t* _sc_skip_number(const uint8_t* p, const uint8_t* end) noexcept nogil:
    """JSON number grammar, exactly; returns the byte after it, or NULL."""
    if p < end and p[0] == 45:  # '-'
        p += 1
    if p >= end:
        return NULL
    if p[0] == 48:  # '0'
        p += 1
    elif _sc_digit(p[0]):
        p += 1
        while p < end and _sc_digit(p[0]):
            p += 1
    else:
        return NULL
    if p < end and p[0] == 46:  # '.'
        p += 1
        if p >= end or not _sc_digit(p[0]):
            return NULL
        while p < end and _sc_digit(p[0]):
            p += 1
    if p < end and (p[0] == 101 or p[0] == 69):  # 'e' 'E'
        p += 1
        if p < end and (p[0] == 43 or p[0] == 45):
            p += 1
        if p >= end or not _sc_digit(p[0]):
            return NULL
        while p < end and _sc_digit(p[0]):
            p += 1
    return p


cdef inline const uint8_t* _sc_literal(const uint8_t* p, const uint8_t* end,
                                       const char* word, Py_ssize_t n) noexcept nogil:
    if end - p < n or memcmp(p, word, n) != 0:
        return NULL
    return p + n


cdef const uint8_t* _sc_skip_value(const uint8_t* p, const uint8_t* end, int depth) noexcept nogil:
    """Validate and skip one JSON value at p (no leading whitespace); returns the byte after it,
    or NULL. ``depth`` is the nesting level of the value (1 = member of the top-level object)."""
    cdef uint8_t c
    if p >= end:
        return NULL
    c = p[0]
    if c == 34:
        return _sc_skip_string(p + 1, end)
    if c == 123 or c == 91:  # '{' '['
        if depth > _SC_MAX_DEPTH:
            return NULL
        p = _sc_ws(p + 1, end)
        if p < end and p[0] == c + 2:  # '}' == '{' + 2, ']' == '[' + 2
            return p + 1
        while True:
            if c == 123:
                if p >= end or p[0] != 34:
                    return NULL
                p = _sc_skip_string(p + 1, end)
                if p == NULL:
                    return NULL
                p = _sc_ws(p, end)
                if p >= end or p[0] != 58:  # ':'
                    return NULL
                p = _sc_ws(p + 1, end)
            p = _sc_skip_value(p, end, depth + 1)
            if p == NULL:
                return NULL
            p = _sc_ws(p, end)
            if p >= end:
                return NULL
            if p[0] == 44:  # ','
                p = _sc_ws(p + 1, end)
            elif p[0] == c + 2:
                return p + 1
            else:
                return NULL
    if c == 116:
        return _sc_literal(p, end, b"true", 4)
    if c == 102:
        return _sc_literal(p, end, b"false", 5)
    if c == 110:
        return _sc_literal(p, end, b"null", 4)
    if c == 45 or _sc_digit(c):
        return _sc_skip_number(p, end)
    return NULL


cdef const uint8_t* _sc_b64_decode(const uint8_t* p, const uint8_t* end, uint8_t* out,
                                   Py_ssize_t* out_len) noexcept nogil:
    """p is just after the opening quote of the delta. Strict base64 (standard alphabet,
    padding required, zero pad bits, nothing else) up to the closing quote, decoded into out.
    Returns the byte after the closing quote, or NULL. out needs room for (end-p)/4*3 bytes."""
    cdef uint8_t* o = out
    cdef uint32_t v
    cdef uint8_t a, b, c
    while end - p >= 4:
        v = _sc_d0[p[0]] | _sc_d1[p[1]] | _sc_d2[p[2]] | _sc_d3[p[3]]
        if v & _SC_BAD:
            break
        o[0] = <uint8_t>(v >> 16)
        o[1] = <uint8_t>(v >> 8)
        o[2] = <uint8_t>v
        o += 3
        p += 4
    # At a group boundary: the closing quote, a padded last group, or an error.
    if p < end and p[0] == 34:
        out_len[0] = o - out
        return p + 1
    if end - p < 5 or p[3] != 61 or p[4] != 34:  # 'xx?="'
        return NULL
    a = _sc_val[p[0]]
    b = _sc_val[p[1]]
    if a == 0xFF or b == 0xFF:
        return NULL
    if p[2] == 61:  # 'xx=="': one byte; the low 4 bits of b must be zero
        if (b & 0x0F) != 0:
            return NULL
        o[0] = <uint8_t>((a << 2) | (b >> 4))
        out_len[0] = o + 1 - out
        return p + 5
    c = _sc_val[p[2]]
    if c == 0xFF or (c & 0x03) != 0:
        return NULL
    o[0] = <uint8_t>((a << 2) | (b >> 4))
    o[1] = <uint8_t>(((b & 0x0F) << 4) | (c >> 2))
    out_len[0] = o + 2 - out
    return p + 5


cdef inline int _sc_key_kind(const uint8_t* k, Py_ssize_t n) noexcept nogil:
    if n == 4 and memcmp(k, b"type", 4) == 0:
        return _SC_K_TYPE
    if n == 5 and memcmp(k, b"delta", 5) == 0:
        return _SC_K_DELTA
    if n == 7 and memcmp(k, b"item_id", 7) == 0:
        return _SC_K_ITEM_ID
    if n == 11 and memcmp(k, b"response_id", 11) == 0:
        return _SC_K_RESPONSE_ID
    return _SC_K_OTHER


cdef class DeltaScanner:
    """Recognises `response.output_audio.delta` frames; decodes their audio into its own buffer.

    C-level use (the relay), inside on_ws_frame::

        if scanner.scan(frame.payload_ptr, frame.payload_size):   # 1: audio, 0: not audio
            # scanner.response_id[:scanner.response_id_len] and scanner.item_id[...] point
            # into the frame (valid only while it is); scanner.pcm[:scanner.pcm_len] is the
            # decoded audio, with HEADROOM free bytes in front for send_reuse_external_buffer.

    After a 0 result the fields are unspecified. ``pcm`` may move when the buffer grows.
    """

    cdef uint8_t* _mem
    cdef Py_ssize_t _cap
    cdef uint8_t* pcm
    cdef Py_ssize_t pcm_len
    cdef const char* response_id
    cdef Py_ssize_t response_id_len
    cdef const char* item_id
    cdef Py_ssize_t item_id_len

    def __cinit__(self):
        self._mem = NULL
        self._cap = 0
        self.pcm = NULL
        self.pcm_len = 0
        self.response_id = NULL
        self.response_id_len = 0
        self.item_id = NULL
        self.item_id_len = 0

    def __dealloc__(self):
        PyMem_Free(self._mem)

    cdef int _reserve(self, Py_ssize_t need) except -1:
        cdef Py_ssize_t cap
        cdef uint8_t* mem
        if need <= self._cap and not (self._cap > _SC_SHRINK_ABOVE and need <= _SC_KEEP):
            return 0
        cap = need if need > _SC_MIN_CAP else _SC_MIN_CAP
        mem = <uint8_t*>PyMem_Malloc(cap)
        if mem == NULL:
            raise MemoryError()
        PyMem_Free(self._mem)
        self._mem = mem
        self._cap = cap
        self.pcm = mem + _SC_HEADROOM
        return 0

    cdef int scan(self, const char* data, Py_ssize_t n) except -1:
        """1 if data[:n] is an audio delta (fields set, PCM decoded), 0 if it is not."""
        cdef const uint8_t* p = <const uint8_t*>data
        cdef const uint8_t* end = p + n
        cdef const uint8_t* k
        cdef const uint8_t* q
        cdef const uint8_t* keys[_SC_MAX_KEYS]
        cdef Py_ssize_t key_lens[_SC_MAX_KEYS]
        cdef Py_ssize_t klen
        cdef int nkeys = 0, i, kind
        cdef bint have_type = False, have_delta = False
        cdef const uint8_t* rid = NULL
        cdef const uint8_t* iid = NULL
        cdef Py_ssize_t rid_len = 0, iid_len = 0

        self.pcm_len = 0
        p = _sc_ws(p, end)
        if p >= end or p[0] != 123:
            return 0
        p = _sc_ws(p + 1, end)
        while True:
            if p >= end or p[0] != 34:
                return 0
            k = p + 1
            q = _sc_plain_string(k, end)
            if q == NULL:
                return 0
            klen = q - k
            for i in range(nkeys):
                if key_lens[i] == klen and memcmp(keys[i], k, klen) == 0:
                    return 0
            if nkeys == _SC_MAX_KEYS:
                return 0
            keys[nkeys] = k
            key_lens[nkeys] = klen
            nkeys += 1
            p = _sc_ws(q + 1, end)
            if p >= end or p[0] != 58:
                return 0
            p = _sc_ws(p + 1, end)
            if p >= end:
                return 0
            kind = _sc_key_kind(k, klen)
            if kind == _SC_K_OTHER:
                p = _sc_skip_value(p, end, 1)
            elif p[0] != 34:
                return 0
            elif kind == _SC_K_DELTA:
                self._reserve(_SC_HEADROOM + (end - p) // 4 * 3 + 4)
                p = _sc_b64_decode(p + 1, end, self.pcm, &self.pcm_len)
                have_delta = True
            else:
                q = _sc_plain_string(p + 1, end)
                if q == NULL:
                    return 0
                if kind == _SC_K_TYPE:
                    if q - (p + 1) != 27 or memcmp(p + 1, _SC_AUDIO_TYPE, 27) != 0:
                        return 0
                    have_type = True
                elif kind == _SC_K_RESPONSE_ID:
                    rid = p + 1
                    rid_len = q - rid
                else:
                    iid = p + 1
                    iid_len = q - iid
                p = q + 1
            if p == NULL:
                return 0
            p = _sc_ws(p, end)
            if p >= end:
                return 0
            if p[0] == 44:
                p = _sc_ws(p + 1, end)
            elif p[0] == 125:
                break
            else:
                return 0
        if _sc_ws(p + 1, end) != end:
            return 0
        if not (have_type and have_delta) or rid == NULL or iid == NULL:
            return 0
        self.response_id = <const char*>rid
        self.response_id_len = rid_len
        self.item_id = <const char*>iid
        self.item_id_len = iid_len
        return 1

    cdef tuple result(self):
        """(response_id, item_id, pcm) of the last successful scan, as Python objects."""
        return (
            self.response_id[:self.response_id_len].decode("ascii"),
            self.item_id[:self.item_id_len].decode("ascii"),
            (<char*>self.pcm)[:self.pcm_len],
        )

    def scan_frame(self, frame):
        """Python-level scan (for tests): the same result as ``scan_delta(frame)``."""
        cdef Py_buffer view
        cdef int ok
        PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
        try:
            ok = self.scan(<const char*>view.buf, view.len)
            if ok:
                return self.result()
            return None
        finally:
            PyBuffer_Release(&view)

    @property
    def headroom(self) -> int:
        """Free bytes in front of the decoded PCM (HEADROOM once a delta was decoded)."""
        return <Py_ssize_t>(self.pcm - self._mem) if self._mem != NULL else _SC_HEADROOM
