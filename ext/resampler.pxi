# Streaming PCM16LE mono resampler between 24000 Hz and the client rates (PROTOCOL.md §9.2).
#
# A polyphase FIR running scipy's resample_poly default filter, quantised to int16 Q14 taps by
# fastproxy/audio/_filters.py (computed once per rate pair, in Python, and shared with the twin).
# All arithmetic is integer (int16 x int16 -> int32, no overflow possible: _filters proves it),
# so the output is exact and the pure-Python twin reproduces it bit for bit. Output n is emitted
# as soon as the count rule allows (RS3): the filter runs d output samples late, d chosen so that
# every tap it needs has already arrived; the history starts as zeros.
#
# Self-contained part: a module that `include`s it gets the cdef class `Resampler` and `_rs_*`.
# Twin: fastproxy/audio/_audio_py.py (tests/parity keeps them byte-identical).

from libc.stdint cimport uint8_t, uint16_t, int16_t, int32_t, int64_t
from libc.string cimport memcpy, memmove
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE

from fastproxy.audio._filters import design as _rs_design

cdef enum:
    _RS_HEADROOM = 14          # free bytes before the output (picows frame header)
    _RS_BASE_RATE = 24000
    _RS_ROUND = 8192           # 2**(COEF_SHIFT - 1)
    _RS_SHIFT = 14             # COEF_SHIFT
    _RS_MIN_CAP = 8192
    _RS_SHRINK_ABOVE = 1048576
    _RS_KEEP = 65536


cdef inline int32_t _rs_dot(const int16_t* c, const int16_t* x, int taps) noexcept nogil:
    # int16 x int16 summed in int32: GCC turns this into pmaddwd (8 lanes) at -O3.
    cdef int32_t acc = 0
    cdef int j
    for j in range(taps):
        acc += <int32_t>c[j] * <int32_t>x[j]
    return acc


cdef class Resampler:
    """Stateful PCM16LE mono converter for one direction of one connection.

    ``Resampler(24000, 24000)`` is a passthrough that only carries a trailing odd byte (A3).
    C-level use (the relay)::

        n = rs.run(ptr, size)        # -> rs.out[:n] (== rs.out_len), HEADROOM free bytes before

    ``out`` is reused (and may move) on every call; consume it before the next one.
    """

    cdef readonly int in_rate
    cdef readonly int out_rate
    cdef readonly int delay
    cdef int _up, _down, _taps, _stepq, _stepr, _phase
    cdef bint _passthrough
    cdef int _carry                 # pending odd byte, or -1
    cdef int64_t _rem               # (input samples * up) mod down, running
    cdef object _design             # keeps the packed taps alive
    cdef const int16_t* _coefs      # up x taps, oldest input first
    cdef int16_t* _hist             # input samples from the next output's window start on
    cdef Py_ssize_t _hist_len
    cdef Py_ssize_t _hist_cap
    cdef uint8_t* _mem
    cdef Py_ssize_t _cap
    cdef uint8_t* out
    cdef Py_ssize_t out_len

    def __cinit__(self, int in_rate, int out_rate):
        cdef int64_t t0, k0
        cdef Py_ssize_t i
        self._mem = NULL
        self._hist = NULL
        self._cap = 0
        self._hist_cap = 0
        self._hist_len = 0
        self.out = NULL
        self.out_len = 0
        self._carry = -1
        self._rem = 0
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._passthrough = in_rate == _RS_BASE_RATE and out_rate == _RS_BASE_RATE
        if self._passthrough:
            self.delay = 0
            self._up = self._down = 1
            return
        d = _rs_design(in_rate, out_rate)  # ValueError for unsupported pairs
        self._design = d
        self._coefs = <const int16_t*><const char*>d.packed
        self._up = d.up
        self._down = d.down
        self._taps = d.taps
        self.delay = d.delay
        self._stepq = self._down // self._up
        self._stepr = self._down % self._up
        # Output 0 has t0 = half_len - delay*down <= 0: its newest input k0 = floor(t0/up) <= 0.
        # History starts as the zeros x[k0 - taps + 1 .. -1].
        t0 = <int64_t>d.half_len - <int64_t>d.delay * self._down
        k0 = -((-t0 + self._up - 1) // self._up)   # floor division of a non-positive t0
        self._phase = <int>(t0 - k0 * self._up)
        self._reserve_hist(self._taps - 1 - k0 + 1024)
        self._hist_len = self._taps - 1 - k0
        for i in range(self._hist_len):
            self._hist[i] = 0

    def __dealloc__(self):
        PyMem_Free(self._mem)
        PyMem_Free(self._hist)

    cdef int _reserve_out(self, Py_ssize_t need) except -1:
        cdef Py_ssize_t cap
        cdef uint8_t* mem
        need += _RS_HEADROOM
        if need <= self._cap and not (self._cap > _RS_SHRINK_ABOVE and need <= _RS_KEEP):
            return 0
        cap = need if need > _RS_MIN_CAP else _RS_MIN_CAP
        mem = <uint8_t*>PyMem_Malloc(cap)
        if mem == NULL:
            raise MemoryError()
        PyMem_Free(self._mem)
        self._mem = mem
        self._cap = cap
        self.out = mem + _RS_HEADROOM
        return 0

    cdef int _reserve_hist(self, Py_ssize_t need) except -1:
        """Room for ``need`` samples, keeping the current ones."""
        cdef Py_ssize_t cap
        cdef int16_t* mem
        if need <= self._hist_cap and not (self._hist_cap > _RS_SHRINK_ABOVE and need <= _RS_KEEP):
            return 0
        cap = need if need > _RS_MIN_CAP // 2 else _RS_MIN_CAP // 2
        mem = <int16_t*>PyMem_Malloc(cap * sizeof(int16_t))
        if mem == NULL:
            raise MemoryError()
        if self._hist_len:
            memcpy(mem, self._hist, self._hist_len * sizeof(int16_t))
        PyMem_Free(self._hist)
        self._hist = mem
        self._hist_cap = cap
        return 0

    cdef Py_ssize_t _run_passthrough(self, const uint8_t* src, Py_ssize_t n) except -1:
        cdef bint have = self._carry >= 0
        cdef Py_ssize_t total = n + have
        cdef Py_ssize_t even = total & ~(<Py_ssize_t>1)
        self._reserve_out(even)
        if even:
            if have:
                self.out[0] = <uint8_t>self._carry
                memcpy(self.out + 1, src, even - 1)
            else:
                memcpy(self.out, src, even)
        if total & 1:
            if n > 0:
                self._carry = src[n - 1]
        else:
            self._carry = -1
        self.out_len = even
        return even

    cdef Py_ssize_t run(self, const char* data, Py_ssize_t n) except -1:
        """Convert data[:n]; the output is self.out[:return value] (also self.out_len)."""
        cdef const uint8_t* src = <const uint8_t*>data
        cdef bint have = self._carry >= 0
        cdef Py_ssize_t total, s, i, count, pos
        cdef int16_t* dst
        cdef int64_t v
        cdef int32_t acc
        cdef int taps = self._taps, up = self._up, stepq = self._stepq, stepr = self._stepr
        cdef int phase = self._phase
        cdef uint8_t* o
        if n < 0 or <size_t>n > (<size_t>-1) >> 10:
            raise MemoryError()
        if self._passthrough:
            return self._run_passthrough(src, n)
        total = n + have
        s = total >> 1
        self._reserve_hist(self._hist_len + s)
        dst = self._hist + self._hist_len
        i = 0
        if s > 0 and have:
            dst[0] = <int16_t>(<uint16_t>(self._carry | (src[0] << 8)))
            src += 1
            i = 1
        while i < s:
            dst[i] = <int16_t>(<uint16_t>(src[0] | (src[1] << 8)))
            src += 2
            i += 1
        if total & 1:
            if n > 0:
                self._carry = (<const uint8_t*>data)[n - 1]
        else:
            self._carry = -1
        self._hist_len += s

        # Count rule (RS3): floor(N*up/down) outputs after N input samples in total.
        v = self._rem + <int64_t>s * up
        count = <Py_ssize_t>(v // self._down)
        self._rem = v % self._down
        self._reserve_out(2 * count)
        o = self.out
        pos = 0
        for i in range(count):
            acc = _rs_dot(self._coefs + phase * taps, self._hist + pos, taps)
            acc = (acc + _RS_ROUND) >> _RS_SHIFT
            if acc > 32767:
                acc = 32767
            elif acc < -32768:
                acc = -32768
            o[0] = <uint8_t>(acc & 0xFF)
            o[1] = <uint8_t>((acc >> 8) & 0xFF)
            o += 2
            phase += stepr
            pos += stepq
            if phase >= up:
                phase -= up
                pos += 1
        self._phase = phase
        if pos:
            memmove(self._hist, self._hist + pos, (self._hist_len - pos) * sizeof(int16_t))
            self._hist_len -= pos
        self.out_len = 2 * count
        return self.out_len

    @property
    def headroom(self) -> int:
        """Free bytes in front of the output buffer (HEADROOM once something was output)."""
        return <Py_ssize_t>(self.out - self._mem) if self._mem != NULL else _RS_HEADROOM

    def process(self, data) -> bytes:
        """Convert a chunk of PCM16LE bytes; returns the output bytes it makes due (RS3)."""
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self.run(<const char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        if self.out_len == 0:
            return b""
        return (<char*>self.out)[:self.out_len]
