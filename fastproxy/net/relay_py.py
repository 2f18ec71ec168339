"""The audio relay, pure-Python twin of ``ext/_relay_c.pyx`` (same names, same behaviour).

A relay sits between one client WebSocket and its upstream WebSocket. Its two picows
listeners receive every frame of both legs; audio takes the fast path here, everything else is
handed to the owning connection (fastproxy.net.connection), which feeds the Session:

- client binary message, audio gate open  → input converter → ``input_audio_buffer.append``
  text(s) upstream (§9.1); gate closed → ``owner.client_audio`` (the Session's held queue).
- upstream text message that is a ``response.output_audio.delta`` of the *armed*
  (response_id, item_id) pair → base64 decode → output converter → one binary message to the
  client (§9.4); a delta of the *dropped* response → counted and dropped (§9.5); anything
  else → ``owner.upstream_text``.
- fragmented messages are reassembled (W6); size limits apply to reassembled messages (W7).
- backpressure: when one leg's write buffer passes its high-water mark, reading from the other
  leg pauses until it drains; while paused, a write buffer over ``send_buffer_max`` is reported,
  and so are the pause and the resume themselves (the owner's stall timer).

The owner is told only rare facts; counters are plain integer fields read on a timer.
"""

from __future__ import annotations

from typing import Any, Protocol

from picows import WSFrame, WSListener, WSMsgType, WSTransport

from fastproxy import audio

TEXT = WSMsgType.TEXT
BINARY = WSMsgType.BINARY
CONTINUATION = WSMsgType.CONTINUATION
CLOSE = WSMsgType.CLOSE
# picows 2.3.1 sends a server-side message over 8 KiB as writelines([header, payload]), the header
# being a view of its reusable write buffer; uvloop queues that view without copying when the
# socket is busy, so the next send rewrites the queued header and corrupts the stream of a slow
# client. send_reuse_external_bytearray takes picows' copying write path instead.
_WRITELINES_MIN = 8193
_HEADROOM = 14


def send_to_client(transport: WSTransport, msg_type: WSMsgType, data: bytes) -> None:
    """``transport.send`` for the client (server-side) leg, safe for large messages."""
    if len(data) < _WRITELINES_MIN:
        transport.send(msg_type, data)
    else:
        buffer = bytearray(_HEADROOM)
        buffer += data
        transport.send_reuse_external_bytearray(msg_type, buffer, _HEADROOM)


class RelayOwner(Protocol):
    """The callbacks a relay makes into its connection (all cold paths)."""

    def client_connected(self, transport: WSTransport) -> None: ...
    def client_disconnected(self) -> None: ...
    def client_close_frame(self, code: int, reason: str) -> None: ...
    def client_text(self, data: bytes) -> None: ...
    def client_audio(self, data: bytes) -> None: ...
    def client_too_large(self, size: int) -> None: ...
    def audio_appended(self, nbytes: int) -> None: ...
    def upstream_connected(self, transport: WSTransport) -> None: ...
    def upstream_disconnected(self) -> None: ...
    def upstream_close_frame(self, code: int, reason: str) -> None: ...
    def upstream_text(self, data: bytes, client_audio_bytes: int) -> None: ...
    def upstream_binary(self, size: int) -> None: ...
    def upstream_too_large(self, size: int) -> None: ...
    def send_buffer_overflow(self, leg: str) -> None: ...
    def send_paused(self, leg: str, paused: bool) -> None: ...


def make_converter(encoding: str, rate: int, to_upstream: bool) -> Any:
    """The stateful converter of one direction (§4.4, §9.2), or None for μ-law/A-law."""
    if encoding != "linear16":
        return None
    return audio.Resampler(rate, 24000) if to_upstream else audio.Resampler(24000, rate)


class _Reassembly:
    """W6: collects the frames of one fragmented message; enforces the size limit (W7)."""

    __slots__ = ("buffer", "limit", "msg_type", "too_large")

    def __init__(self, limit: int) -> None:
        self.buffer = bytearray()
        self.msg_type: WSMsgType | None = None
        self.limit = limit
        self.too_large = False

    def feed(self, frame: WSFrame) -> tuple[WSMsgType, bytes] | int | None:
        """Returns (type, message) when complete, the size when over the limit, else None."""
        if frame.msg_type != CONTINUATION:
            self.buffer.clear()
            self.msg_type = frame.msg_type
            self.too_large = False
        elif self.msg_type is None:
            return None  # a continuation without a start: ignore
        if not self.too_large:
            self.buffer += frame.get_payload_as_memoryview()
            if len(self.buffer) > self.limit:
                self.too_large = True
                size = len(self.buffer)
                self.buffer = bytearray()
                if frame.fin:
                    self.msg_type = None
                return size
        if not frame.fin:
            return None
        msg_type, self.msg_type = self.msg_type, None
        if self.too_large:
            return None
        data = bytes(self.buffer)
        self.buffer = bytearray()
        assert msg_type is not None
        return msg_type, data


class Relay:
    """One connection's audio relay. See the module docstring."""

    def __init__(
        self,
        owner: RelayOwner,
        max_client_message: int,
        max_upstream_message: int,
        send_buffer_max: int,
    ) -> None:
        self.owner = owner
        self.client: WSTransport | None = None
        self.upstream: WSTransport | None = None
        self.max_client_message = max_client_message
        self.max_upstream_message = max_upstream_message
        self.send_buffer_max = send_buffer_max
        self.gate_open = False
        self.report_appends = False
        self.in_conv: Any = audio.Resampler(24000, 24000)
        self.out_conv: Any = None
        self.armed_response: str | None = None
        self.armed_item: str | None = None
        self.drop_response: str | None = None
        self.client_paused = False  # the client's write buffer is above its high-water mark
        self.upstream_paused = False
        self.client_fragments = _Reassembly(max_client_message)
        self.upstream_fragments = _Reassembly(max_upstream_message)
        # counters (PROTOCOL.md §12; copied to Prometheus on a timer)
        self.frames_in = 0  # client audio messages relayed upstream
        self.bytes_in = 0  # upstream-format audio bytes appended
        self.frames_out = 0  # binary audio messages sent to the client
        self.bytes_out = 0  # = client_audio_bytes
        self.deltas_dropped = 0
        self.client_listener = ClientLeg(self)
        self.upstream_listener = UpstreamLeg(self)

    # -- configuration (Session actions) ---------------------------------------------------------

    def configure_formats(self, in_enc: str, in_rate: int, out_enc: str, out_rate: int) -> None:
        self.in_conv = make_converter(in_enc, in_rate, True)
        self.out_conv = (
            make_converter(out_enc, out_rate, False)
            if (out_enc, out_rate) != ("linear16", 24000)
            else None
        )

    def arm(self, response_id: str | None, item_id: str | None) -> None:
        self.armed_response = response_id
        self.armed_item = item_id

    def drop(self, response_id: str) -> None:
        self.drop_response = response_id

    @property
    def client_audio_bytes(self) -> int:
        return self.bytes_out

    # -- client → upstream -------------------------------------------------------------------------

    def on_client_frame(self, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type == BINARY and frame.fin:
            size = frame.payload_size
            if size > self.max_client_message:
                self.owner.client_too_large(size)
            elif size:
                if self.gate_open:
                    self.send_audio_upstream(frame.get_payload_as_bytes())
                else:
                    self.owner.client_audio(frame.get_payload_as_bytes())
            return
        if msg_type == TEXT and frame.fin:
            if frame.payload_size > self.max_client_message:
                self.owner.client_too_large(frame.payload_size)
            else:
                self.owner.client_text(frame.get_payload_as_bytes())
            return
        if msg_type == CLOSE:
            code = frame.get_close_code().value
            self.owner.client_close_frame(code, frame.get_close_reason() or "")
            return
        if msg_type not in (TEXT, BINARY, CONTINUATION):
            return  # PING/PONG: picows answers pings itself
        result = self.client_fragments.feed(frame)
        if isinstance(result, int):
            self.owner.client_too_large(result)
        elif result is not None:
            kind, data = result
            if kind == TEXT:
                self.owner.client_text(data)
            elif data:
                if self.gate_open:
                    self.send_audio_upstream(data)
                else:
                    self.owner.client_audio(data)

    def send_audio_upstream(self, data: bytes) -> None:
        """Convert client audio to the upstream format and append it (§9.1)."""
        pcm = self.in_conv.process(data) if self.in_conv is not None else data
        if not pcm or self.upstream is None:
            return
        upstream = self.upstream
        for event in audio.encode_appends(pcm):
            upstream.send(TEXT, event)
        self.frames_in += 1
        self.bytes_in += len(pcm)
        if self.upstream_paused:
            self.check_send_buffer(upstream, "upstream")
        if self.report_appends:
            self.owner.audio_appended(len(pcm))

    # -- upstream → client -------------------------------------------------------------------------

    def on_upstream_frame(self, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type == TEXT and frame.fin:
            self.upstream_message(frame.get_payload_as_bytes())
            return
        if msg_type == BINARY and frame.fin:
            self.owner.upstream_binary(frame.payload_size)
            return
        if msg_type == CLOSE:
            code = frame.get_close_code().value
            self.owner.upstream_close_frame(code, frame.get_close_reason() or "")
            return
        if msg_type not in (TEXT, BINARY, CONTINUATION):
            return
        result = self.upstream_fragments.feed(frame)
        if isinstance(result, int):
            self.owner.upstream_too_large(result)
        elif result is not None:
            kind, data = result
            if kind == TEXT:
                self.upstream_message(data)
            else:
                self.owner.upstream_binary(len(data))

    def upstream_message(self, data: bytes) -> None:
        if self.armed_response is not None or self.drop_response is not None:
            delta = audio.scan_delta(data)
            if delta is not None:
                response_id, item_id, pcm = delta
                if response_id == self.drop_response:
                    self.deltas_dropped += 1
                    return
                if response_id == self.armed_response and item_id == self.armed_item:
                    self.send_audio_to_client(pcm)
                    return
        self.owner.upstream_text(data, self.bytes_out)

    def send_audio_to_client(self, pcm: bytes) -> None:
        """Convert upstream audio to the client format; one binary message if non-empty (§9.4)."""
        out = self.out_conv.process(pcm) if self.out_conv is not None else pcm
        if not out or self.client is None:
            return
        send_to_client(self.client, BINARY, out)
        self.frames_out += 1
        self.bytes_out += len(out)
        if self.client_paused:
            self.check_send_buffer(self.client, "client")

    # -- backpressure ---------------------------------------------------------------------------

    def check_send_buffer(self, transport: WSTransport, leg: str) -> None:
        if transport.underlying_transport.get_write_buffer_size() > self.send_buffer_max:
            self.owner.send_buffer_overflow(leg)

    def set_paused(self, leg: str, paused: bool) -> None:
        """``leg``'s write buffer crossed its high/low-water mark: (un)throttle the other leg."""
        other = self.upstream if leg == "client" else self.client
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


class ClientLeg(WSListener):  # type: ignore[misc]
    def __init__(self, relay: Relay) -> None:
        super().__init__()
        self.relay = relay

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.relay.client = transport
        self.relay.owner.client_connected(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        self.relay.on_client_frame(frame)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.relay.owner.client_disconnected()

    def pause_writing(self) -> None:
        self.relay.set_paused("client", True)

    def resume_writing(self) -> None:
        self.relay.set_paused("client", False)


class UpstreamLeg(WSListener):  # type: ignore[misc]
    def __init__(self, relay: Relay) -> None:
        super().__init__()
        self.relay = relay

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.relay.upstream = transport
        self.relay.owner.upstream_connected(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        self.relay.on_upstream_frame(frame)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.relay.owner.upstream_disconnected()

    def pause_writing(self) -> None:
        self.relay.set_paused("upstream", True)

    def resume_writing(self) -> None:
        self.relay.set_paused("upstream", False)
