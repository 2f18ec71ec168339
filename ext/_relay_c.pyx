# cython: language_level=3
"""Compiled audio relay: fastproxy.net._relay_c (behavioural spec: fastproxy/net/relay_py.py).

Two ``cdef`` subclasses of picows' ``WSListener`` receive every frame of a pair at C speed.
Client audio (gate open) is converted and framed as ``input_audio_buffer.append`` text into a
reusable buffer and sent with ``send_reuse_external_buffer``; upstream audio deltas of the armed
(response, item) pair are scanned, base64-decoded into a reusable buffer, converted and sent to
the client the same way. No Python object is created per audio frame. Everything else (text
messages, closes, fragments, overflows) is handed to the owning connection, which feeds the
Session. The kernels are the same .pxi sources as fastproxy.audio._audio_c.
"""

include "append.pxi"
include "scanner.pxi"
include "resampler.pxi"

from libc.string cimport memcmp
from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport

from fastproxy.net.relay_py import _Reassembly, send_to_client

cdef Py_ssize_t MAX_APPEND = 11534336


cdef class Relay:
    """One connection's audio relay (same Python surface as relay_py.Relay)."""

    cdef readonly object owner
    cdef public WSTransport client
    cdef public WSTransport upstream
    cdef readonly Py_ssize_t max_client_message
    cdef readonly Py_ssize_t max_upstream_message
    cdef readonly Py_ssize_t send_buffer_max
    cdef public bint gate_open
    cdef public bint report_appends
    cdef Resampler in_conv
    cdef Resampler out_conv
    cdef AppendFramer framer
    cdef DeltaScanner scanner
    cdef bytes armed_response_b
    cdef bytes armed_item_b
    cdef bytes drop_response_b
    cdef readonly bint client_paused
    cdef readonly bint upstream_paused
    cdef object client_fragments
    cdef object upstream_fragments
    cdef readonly long long frames_in
    cdef readonly long long bytes_in
    cdef readonly long long frames_out
    cdef readonly long long bytes_out
    cdef readonly long long deltas_dropped
    cdef readonly ClientLeg client_listener
    cdef readonly UpstreamLeg upstream_listener

    def __init__(self, owner, Py_ssize_t max_client_message, Py_ssize_t max_upstream_message,
                 Py_ssize_t send_buffer_max):
        self.owner = owner
        self.client = None
        self.upstream = None
        self.max_client_message = max_client_message
        self.max_upstream_message = max_upstream_message
        self.send_buffer_max = send_buffer_max
        self.gate_open = False
        self.report_appends = False
        self.in_conv = Resampler(24000, 24000)
        self.out_conv = None
        self.framer = AppendFramer()
        self.scanner = DeltaScanner()
        self.armed_response_b = None
        self.armed_item_b = None
        self.drop_response_b = None
        self.client_fragments = _Reassembly(max_client_message)
        self.upstream_fragments = _Reassembly(max_upstream_message)
        self.client_listener = ClientLeg(self)
        self.upstream_listener = UpstreamLeg(self)

    # -- configuration (Session actions) -----------------------------------------------------

    def configure_formats(self, str in_enc, int in_rate, str out_enc, int out_rate):
        self.in_conv = Resampler(in_rate, 24000) if in_enc == "linear16" else None
        if out_enc == "linear16" and out_rate != 24000:
            self.out_conv = Resampler(24000, out_rate)
        else:
            self.out_conv = None

    def arm(self, response_id, item_id):
        if response_id is None or item_id is None:
            self.armed_response_b = None
            self.armed_item_b = None
        else:
            self.armed_response_b = (<str>response_id).encode("utf-8")
            self.armed_item_b = (<str>item_id).encode("utf-8")

    def drop(self, str response_id):
        self.drop_response_b = response_id.encode("utf-8")

    @property
    def armed_response(self):
        return None if self.armed_response_b is None else self.armed_response_b.decode()

    @property
    def armed_item(self):
        return None if self.armed_item_b is None else self.armed_item_b.decode()

    @property
    def drop_response(self):
        return None if self.drop_response_b is None else self.drop_response_b.decode()

    @property
    def client_audio_bytes(self):
        return self.bytes_out

    # -- client -> upstream --------------------------------------------------------------------

    cdef void _client_frame(self, WSFrame frame) except *:
        cdef WSMsgType msg_type = frame.msg_type
        cdef Py_ssize_t size = frame.payload_size
        if msg_type == WSMsgType.BINARY and frame.fin:
            if size > self.max_client_message:
                self.owner.client_too_large(size)
            elif size:
                if self.gate_open:
                    self._append(frame.payload_ptr, size)
                else:
                    self.owner.client_audio(frame.get_payload_as_bytes())
            return
        if msg_type == WSMsgType.TEXT and frame.fin:
            if size > self.max_client_message:
                self.owner.client_too_large(size)
            else:
                self.owner.client_text(frame.get_payload_as_bytes())
            return
        if msg_type == WSMsgType.CLOSE:
            self.owner.client_close_frame(<int>frame.get_close_code(), frame.get_close_reason() or "")
            return
        if (msg_type != WSMsgType.TEXT and msg_type != WSMsgType.BINARY
                and msg_type != WSMsgType.CONTINUATION):
            return
        result = self.client_fragments.feed(frame)
        if isinstance(result, int):
            self.owner.client_too_large(result)
        elif result is not None:
            kind, data = result
            if kind == WSMsgType.TEXT:
                self.owner.client_text(data)
            elif data:
                if self.gate_open:
                    self.send_audio_upstream(data)
                else:
                    self.owner.client_audio(data)

    cdef int _append(self, const char* data, Py_ssize_t n) except -1:
        """Convert client audio and send it as append event(s) (§9.1). The hot path."""
        cdef const char* pcm = data
        cdef Py_ssize_t pcm_len = n, off = 0, piece
        cdef WSTransport upstream = self.upstream
        if self.in_conv is not None:
            pcm_len = self.in_conv.run(data, n)
            pcm = <const char*>self.in_conv.out
        if pcm_len == 0 or upstream is None:
            return 0
        while off < pcm_len:
            piece = pcm_len - off
            if piece > MAX_APPEND:
                piece = MAX_APPEND
            self.framer.write(pcm + off, piece)
            upstream.send_reuse_external_buffer(
                WSMsgType.TEXT, <char*>self.framer.payload, self.framer.payload_len)
            off += piece
        self.frames_in += 1
        self.bytes_in += pcm_len
        if self.upstream_paused:
            self._check_send_buffer(upstream, "upstream")
        if self.report_appends:
            self.owner.audio_appended(pcm_len)
        return 0

    def send_audio_upstream(self, data):
        """Convert client-format audio and append it upstream (held audio, §3.5 R3)."""
        cdef const unsigned char[:] view = data
        if view.shape[0]:
            self._append(<const char*>&view[0], view.shape[0])

    # -- upstream -> client --------------------------------------------------------------------

    cdef void _upstream_frame(self, WSFrame frame) except *:
        cdef WSMsgType msg_type = frame.msg_type
        if msg_type == WSMsgType.TEXT and frame.fin:
            if not self._fast_delta(frame.payload_ptr, frame.payload_size):
                self.owner.upstream_text(frame.get_payload_as_bytes(), self.bytes_out)
            return
        if msg_type == WSMsgType.BINARY and frame.fin:
            self.owner.upstream_binary(frame.payload_size)
            return
        if msg_type == WSMsgType.CLOSE:
            self.owner.upstream_close_frame(<int>frame.get_close_code(), frame.get_close_reason() or "")
            return
        if (msg_type != WSMsgType.TEXT and msg_type != WSMsgType.BINARY
                and msg_type != WSMsgType.CONTINUATION):
            return
        result = self.upstream_fragments.feed(frame)
        if isinstance(result, int):
            self.owner.upstream_too_large(result)
        elif result is not None:
            kind, data = result
            if kind == WSMsgType.TEXT:
                self.upstream_message(data)
            else:
                self.owner.upstream_binary(len(data))

    cdef bint _matches(self, bytes expected, const char* ptr, Py_ssize_t n) noexcept:
        return (expected is not None and len(expected) == n
                and memcmp(<const char*>expected, ptr, n) == 0)

    cdef bint _fast_delta(self, const char* data, Py_ssize_t n) except -1:
        """True when the frame was an audio delta handled here (forwarded or dropped)."""
        cdef DeltaScanner sc = self.scanner
        if self.armed_response_b is None and self.drop_response_b is None:
            return False
        if not sc.scan(data, n):
            return False
        if self._matches(self.drop_response_b, sc.response_id, sc.response_id_len):
            self.deltas_dropped += 1
            return True
        if (self._matches(self.armed_response_b, sc.response_id, sc.response_id_len)
                and self._matches(self.armed_item_b, sc.item_id, sc.item_id_len)):
            self._to_client(<const char*>sc.pcm, sc.pcm_len)
            return True
        return False

    def upstream_message(self, data):
        """A reassembled upstream text message: fast path or the owner (Session)."""
        cdef const unsigned char[:] view = data
        if view.shape[0] and self._fast_delta(<const char*>&view[0], view.shape[0]):
            return
        self.owner.upstream_text(bytes(data), self.bytes_out)

    cdef int _to_client(self, const char* pcm, Py_ssize_t n) except -1:
        """Convert upstream audio and send one binary message (§9.4). ``pcm`` has headroom."""
        cdef WSTransport client = self.client
        cdef const char* out = pcm
        cdef Py_ssize_t out_len = n
        if self.out_conv is not None:
            out_len = self.out_conv.run(pcm, n)
            out = <const char*>self.out_conv.out
        if out_len == 0 or client is None:
            return 0
        client.send_reuse_external_buffer(WSMsgType.BINARY, <char*>out, out_len)
        self.frames_out += 1
        self.bytes_out += out_len
        if self.client_paused:
            self._check_send_buffer(client, "client")
        return 0

    def send_audio_to_client(self, pcm):
        """Convert upstream-format audio and send it to the client (Session slow path)."""
        cdef bytes out
        if self.out_conv is not None:
            out = self.out_conv.process(pcm)
        else:
            out = bytes(pcm)
        if not out or self.client is None:
            return
        send_to_client(self.client, WSMsgType.BINARY, out)
        self.frames_out += 1
        self.bytes_out += len(out)
        if self.client_paused:
            self._check_send_buffer(self.client, "client")

    # -- backpressure ----------------------------------------------------------------------------

    cdef int _check_send_buffer(self, WSTransport transport, str leg) except -1:
        if transport.underlying_transport.get_write_buffer_size() > self.send_buffer_max:
            self.owner.send_buffer_overflow(leg)
        return 0

    def set_paused(self, str leg, bint paused):
        """``leg``'s write buffer crossed its high/low-water mark: (un)throttle the other leg."""
        cdef WSTransport other = self.upstream if leg == "client" else self.client
        if leg == "client":
            self.client_paused = paused
        else:
            self.upstream_paused = paused
        self.owner.send_paused(leg, paused)
        if other is None or other.is_disconnected:
            return
        if paused:
            other.underlying_transport.pause_reading()
        else:
            other.underlying_transport.resume_reading()


cdef class ClientLeg(WSListener):
    cdef Relay relay

    def __init__(self, Relay relay):
        self.relay = relay

    cpdef on_ws_connected(self, WSTransport transport):
        self.relay.client = transport
        self.relay.owner.client_connected(transport)

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        self.relay._client_frame(frame)

    cpdef on_ws_disconnected(self, WSTransport transport):
        self.relay.owner.client_disconnected()

    cpdef pause_writing(self):
        self.relay.set_paused("client", True)

    cpdef resume_writing(self):
        self.relay.set_paused("client", False)


cdef class UpstreamLeg(WSListener):
    cdef Relay relay

    def __init__(self, Relay relay):
        self.relay = relay

    cpdef on_ws_connected(self, WSTransport transport):
        self.relay.upstream = transport
        self.relay.owner.upstream_connected(transport)

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        self.relay._upstream_frame(frame)

    cpdef on_ws_disconnected(self, WSTransport transport):
        self.relay.owner.upstream_disconnected()

    cpdef pause_writing(self):
        self.relay.set_paused("upstream", True)

    cpdef resume_writing(self):
        self.relay.set_paused("upstream", False)
