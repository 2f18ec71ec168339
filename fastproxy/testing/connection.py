"""One accepted WebSocket on the mock upstream: recording, scripting API and default reactions.

A :class:`MockConnection` is the picows listener of its connection. Frames are reassembled,
recorded (:class:`Received`, with monotonic receive times), offered to the hooks (per
connection ``on_event``, then ``mock.on(type)`` handlers, then ``mock.on_event``) and, unless a
hook handled them, given the default reaction of :class:`MockBehaviour` (session.updated, item
confirmation, replies, VAD, echo, control answers).

Echo mode has a fast path: a canonical ``{"type":"input_audio_buffer.append","audio":"…"}`` is
answered by prefix check and slice, without a JSON parse, because load benchmarks push tens of
thousands of appends per second through it.

Everything a connection schedules (delayed answers, paced replies, async hooks) is tracked and
cancelled when it closes, so stopping the mock leaks no task.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast
from urllib.parse import parse_qsl, urlsplit

import msgspec
from multidict import CIMultiDict
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest

from fastproxy.net.relay_py import send_to_client  # picows/uvloop large-send workaround

from . import events as ev
from . import reactions
from .behaviour import EventHook, MockBehaviour
from .scripts import (
    DEFAULT_REPLY_TEXT,
    AudioReply,
    CustomReply,
    ErrorReply,
    FunctionCallReply,
    NoReply,
    Pause,
    ReplyContext,
    ReplySpec,
    Step,
    TextReply,
    build_steps,
    say_exactly_text,
)
from .speech import EnergyVad
from .waiters import Waiters

if TYPE_CHECKING:
    from .mock_upstream import MockUpstream

Event = dict[str, Any]
T = TypeVar("T")

log = logging.getLogger("fastproxy.testing.mock_upstream")

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONT = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE

_APPEND_PREFIX = b'{"type":"input_audio_buffer.append","audio":"'
_APPEND_PREFIX_LEN = len(_APPEND_PREFIX)
_ECHO_PREFIX = (
    b'{"type":"response.output_audio.delta","response_id":"%s","item_id":"%s",'
    b'"output_index":0,"content_index":0,"delta":"'
) % (reactions.ECHO_RESPONSE_ID.encode(), reactions.ECHO_ITEM_ID.encode())
_ECHO_SUFFIX = b'"}'

_CONFIRM_EVENTS = ("conversation.item.added", "conversation.item.done")
_CLOSE_GRACE_S = 1.0  # how long a close we started waits for the peer's close frame

_encode = msgspec.json.encode
_decode = msgspec.json.decode


@dataclass(slots=True)
class Received:
    """One message received from the client.

    ``event`` is the parsed JSON object of a text message (None if it was not valid JSON or not
    an object; ``data`` then holds the raw bytes). Binary messages have ``kind`` "binary" and
    their bytes in ``data``. ``t`` is ``time.monotonic()`` at receipt.
    """

    t: float
    kind: Literal["text", "binary"]
    event: Event | None = None
    data: bytes | None = None

    @property
    def type(self) -> str | None:
        t = self.event.get("type") if self.event is not None else None
        return t if isinstance(t, str) else None


class _Bounded(list[T]):
    """A list that drops its oldest quarter when it grows past ``limit``; ``dropped`` counts
    the entries gone, so ``dropped + i`` is an entry's index in the whole history."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.dropped = 0

    def push(self, item: T) -> None:
        self.append(item)
        if len(self) > self.limit:
            n = max(1, self.limit // 4)
            del self[:n]
            self.dropped += n


class MockConnection(WSListener):
    """A client connection to the mock upstream (see the module docstring).

    Attributes a test reads: ``index`` (0-based, in accept order), ``path``, ``query``,
    ``headers`` (upgrade request, case-insensitive), ``received`` / :attr:`events`, ``sent``,
    ``session`` (the merged session state), ``items`` (conversation items by id),
    ``active_responses``, ``appends_received``, ``binary_received``, ``connected_at``,
    ``closed``, ``closed_at``, ``close_code`` / ``close_reason`` (from the client's close
    frame, None if none arrived), ``close_sent``, ``was_reset``, ``reading_stopped`` and
    ``withheld`` (fault injection: :meth:`stop_reading`, ``MockBehaviour.withhold_events``).
    """

    def __init__(
        self, mock: MockUpstream, index: int, behaviour: MockBehaviour, request: WSUpgradeRequest
    ) -> None:
        super().__init__()
        self.mock = mock
        self.index = index
        self.behaviour = behaviour
        target = request.path.decode("latin-1")
        split = urlsplit(target)
        self.target = target
        self.path = split.path
        self.query: dict[str, str] = dict(parse_qsl(split.query, keep_blank_values=True))
        self.headers: CIMultiDict[str] = CIMultiDict(request.headers)
        self.on_event: EventHook | None = None
        self.transport: WSTransport | None = None
        self.peer: Any = None
        self.connected_at: float | None = None
        self.closed = False
        self.closed_at: float | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.close_sent: tuple[int, str] | None = None
        self.was_reset = False
        self.reading_stopped = False
        self.withheld: list[Event] = []  # events not sent because of withhold_events
        limit = behaviour.max_recorded
        self.received: _Bounded[Received] = _Bounded(limit)
        self.sent: _Bounded[Event] = _Bounded(limit)
        self.appends_received = 0
        self.binary_received = 0
        self.session: dict[str, Any] = ev.session_object(f"sess_{index + 1}")
        self.items: dict[str, dict[str, Any]] = {}
        self.active_responses: dict[str, float] = {}  # id -> time.monotonic() at response.created
        self.replies: list[ReplySpec] = list(behaviour.replies)
        self.input_buffer_bytes = 0  # appended since the last commit / clear
        self.input_audio_bytes = 0  # appended in total
        self._record_appends = (
            behaviour.record_appends if behaviour.record_appends is not None else not behaviour.echo
        )
        self._frag: bytearray | None = None
        self._frag_type: WSMsgType | None = None
        self._counters = {"event": 0, "resp": 0, "item": 0, "call": 0}
        self._last_item_id: str | None = None
        self._pending_user_text: str | None = None
        self._reply_tasks: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._waiters: Waiters[MockConnection] = Waiters(self)
        self._vad: EnergyVad | None = None
        self._speech_item: str | None = None
        self._speech_start_ms = 0
        if behaviour.vad:
            self._vad = EnergyVad(
                threshold_rms=behaviour.vad_threshold_rms,
                min_speech_ms=behaviour.vad_min_speech_ms,
                silence_ms=behaviour.vad_silence_ms,
            )

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open" if self.transport else "upgrading"
        return f"<MockConnection #{self.index} {self.target} {state} rx={self.received_total}>"

    # ------------------------------------------------------------------ reading the record

    @property
    def received_total(self) -> int:
        """Messages recorded since the connection opened (including dropped ones)."""
        return self.received.dropped + len(self.received)

    @property
    def events(self) -> list[Event]:
        """Parsed JSON objects received, in order."""
        return [r.event for r in self.received if r.event is not None]

    def events_of(self, type_: str) -> list[Event]:
        return [r.event for r in self.received if r.event is not None and r.type == type_]

    def event_types(self) -> list[str | None]:
        """The ``type`` of every recorded text message (None for non-JSON / untyped)."""
        return [r.type for r in self.received if r.kind == "text"]

    def has_event(self, type_: str) -> bool:
        return any(r.type == type_ for r in self.received)

    def find_event(
        self, type_: str, nth: int = 0, where: Callable[[Event], bool] | None = None
    ) -> Event | None:
        """The ``nth`` (0-based) received event of ``type_`` matching ``where``, or None."""
        for e in self._iter_events(type_, where):
            if nth == 0:
                return e
            nth -= 1
        return None

    def _iter_events(self, type_: str, where: Callable[[Event], bool] | None) -> Iterator[Event]:
        for r in self.received:
            e = r.event
            if e is not None and e.get("type") == type_ and (where is None or where(e)):
                yield e

    @property
    def binary_frames(self) -> list[bytes]:
        return [r.data for r in self.received if r.kind == "binary" and r.data is not None]

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    # ------------------------------------------------------------------ waiting

    async def wait_for(
        self, predicate: Callable[[MockConnection], T | None], timeout: float = 5.0
    ) -> T:
        """Wait until ``predicate(conn)`` is truthy (re-checked on every message and on close)
        and return its value. Raises ``TimeoutError`` naming what was received."""
        return await self._waiters.wait(
            predicate,
            timeout,
            lambda: (
                f"mock connection #{self.index} (received types: "
                f"{self.event_types()[-40:]}, closed={self.closed})"
            ),
        )

    async def wait_for_event(
        self,
        type_: str,
        timeout: float = 5.0,
        *,
        nth: int = 0,
        where: Callable[[Event], bool] | None = None,
    ) -> Event:
        """The ``nth`` (0-based) event of ``type_`` (matching ``where``) received on this
        connection, waiting for it if needed."""
        return await self.wait_for(lambda c: c.find_event(type_, nth, where), timeout)

    async def wait_closed(self, timeout: float = 5.0) -> None:
        await self.wait_for(lambda c: c.closed, timeout)

    def _notify(self) -> None:
        self._waiters.notify()
        self.mock._notify()

    # ------------------------------------------------------------------ ids

    def _next(self, kind: str) -> int:
        self._counters[kind] += 1
        return self._counters[kind]

    def _observe_id(self, kind: str, value: Any) -> None:
        # A scripted "resp_3" / "call_2" moves the counter on, so generated ids never reuse it.
        if isinstance(value, str) and value.startswith(kind + "_"):
            suffix = value[len(kind) + 1 :]
            if suffix.isdigit() and int(suffix) > self._counters[kind]:
                self._counters[kind] = int(suffix)

    def next_event_id(self) -> str:
        return f"event_mock{self._next('event')}"

    def new_response_id(self) -> str:
        """``resp_1``, ``resp_2``, … (per connection)."""
        return f"resp_{self._next('resp')}"

    def new_item_id(self) -> str:
        return f"item_{self._next('item')}"

    def new_call_id(self) -> str:
        return f"call_{self._next('call')}"

    # ------------------------------------------------------------------ sending

    def send(self, event: Event, *, stamp: bool = True) -> bool:
        """Send one event as a JSON text message; returns False if the connection is gone.

        ``stamp`` adds a fresh ``event_id`` when the event has none (the API puts one on every
        event). ``response.created`` / ``response.done`` update :attr:`active_responses`.
        """
        transport = self.transport
        if transport is None or self.closed or transport.is_close_frame_sent:
            return False
        if event.get("type") in self.behaviour.withhold_events:
            self.withheld.append(event)
            return True
        if stamp and "event_id" not in event:
            if "type" in event:
                event = {"type": event["type"], "event_id": self.next_event_id(), **event}
            else:
                event = {"event_id": self.next_event_id(), **event}
        etype = event.get("type")
        if etype == "response.created" or etype == "response.done":
            response = event.get("response")
            rid = response.get("id") if isinstance(response, dict) else None
            if isinstance(rid, str):
                if etype == "response.created":
                    self.active_responses[rid] = time.monotonic()
                    self._observe_id("resp", rid)
                else:
                    self.active_responses.pop(rid, None)
        elif etype == "response.function_call_arguments.done":
            self._observe_id("call", event.get("call_id"))
        send_to_client(transport, _TEXT, _encode(event))
        self.sent.push(event)
        self._notify()
        return True

    def send_many(self, events: Iterable[Event]) -> None:
        for e in events:
            self.send(e)

    def send_raw_text(self, text: str | bytes) -> bool:
        """Send a text message verbatim (e.g. ``"not json"``, P-100)."""
        if self.transport is None or self.closed:
            return False
        send_to_client(self.transport, _TEXT, text.encode() if isinstance(text, str) else text)
        return True

    def send_binary(self, data: bytes) -> bool:
        """Send a binary message (the API never does; P-17)."""
        if self.transport is None or self.closed:
            return False
        send_to_client(self.transport, _BINARY, data)
        return True

    def send_fragments(self, parts: Sequence[bytes | str], *, binary: bool = False) -> bool:
        """Send one message as ``len(parts)`` frames (FIN=0 … continuation, FIN=1; W6)."""
        if self.transport is None or self.closed or not parts:
            return False
        for i, part in enumerate(parts):
            data = part.encode() if isinstance(part, str) else part
            msg_type = (_BINARY if binary else _TEXT) if i == 0 else _CONT
            self.transport.send(msg_type, data, fin=i == len(parts) - 1)
        return True

    def send_ping(self, payload: bytes = b"") -> bool:
        if self.transport is None or self.closed:
            return False
        self.transport.send_ping(payload)
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start a WebSocket close with ``code`` / ``reason`` (P-07, P-08); the TCP
        connection is dropped when the client answers, or after a 1 s grace."""
        transport = self.transport
        if transport is None or self.closed or transport.is_close_frame_sent:
            return
        transport.send_close(_close_code(code), reason.encode())
        self.close_sent = (code, reason)
        self.call_later(_CLOSE_GRACE_S * 1000, transport.disconnect)

    def stop_reading(self) -> None:
        """Fault: stop reading the socket (an upstream that hangs while its peer streams).
        The kernel buffers fill, then the proxy's writes back up; nothing received is
        processed until :meth:`resume_reading`."""
        transport = self.transport
        if transport is None or self.closed or self.reading_stopped:
            return
        self.reading_stopped = True
        transport.underlying_transport.pause_reading()

    def resume_reading(self) -> None:
        transport = self.transport
        if transport is None or self.closed or not self.reading_stopped:
            return
        self.reading_stopped = False
        transport.underlying_transport.resume_reading()

    def reset(self) -> None:
        """Drop the TCP connection without a close frame (RST; the peer sees 1006, P-09)."""
        transport = self.transport
        if transport is None or self.closed:
            return
        self.was_reset = True
        raw = transport.underlying_transport
        sock = raw.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.abort()

    # ------------------------------------------------------------------ scheduling

    def call_later(self, delay_ms: float, fn: Callable[[], Any]) -> asyncio.TimerHandle:
        """Run ``fn`` after ``delay_ms`` unless the connection closes first."""
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def run() -> None:
            self._timers.discard(handle)
            if not self.closed:
                fn()

        handle = loop.call_later(max(0.0, delay_ms) / 1000.0, run)
        self._timers.add(handle)
        return handle

    def spawn(self, awaitable: Awaitable[T]) -> asyncio.Task[T]:
        """Run ``awaitable`` as a task owned by this connection (cancelled when it closes)."""

        async def wrapper() -> T:
            return await awaitable

        task = asyncio.get_running_loop().create_task(wrapper())
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.mock._hook_error(self, task.exception())

    async def play(self, steps: Iterable[Step]) -> None:
        """Send events in order, sleeping at each :class:`Pause`."""
        for step in steps:
            if isinstance(step, Pause):
                await asyncio.sleep(step.ms / 1000.0)
            elif not self.send(step):
                return

    def schedule(self, delay_ms: float, *steps: Step) -> asyncio.Task[None]:
        """Play ``steps`` after ``delay_ms`` in the background ("at t=300 the mock sends …")."""
        return self.spawn(self.play([Pause(delay_ms), *steps]))

    def _run_steps(self, steps: list[Step], response_id: str | None) -> None:
        if not any(isinstance(s, Pause) for s in steps):
            for s in steps:
                self.send(s)  # type: ignore[arg-type]
            return
        task = self.spawn(self.play(steps))
        if response_id is not None:
            self._reply_tasks[response_id] = task
            task.add_done_callback(lambda _t: self._reply_tasks.pop(response_id, None))

    # ------------------------------------------------------------------ scripted reactions

    def reject(
        self, event: Event, code: str = "invalid_value", message: str = "Invalid request", **kw: Any
    ) -> bool:
        """Answer ``event`` with an ``error`` naming its ``event_id`` (§10.3)."""
        eid = event.get("event_id")
        return self.send(ev.error(code, message, eid if isinstance(eid, str) else None, **kw))

    def confirm_item(self, item: dict[str, Any], events: Sequence[str] = _CONFIRM_EVENTS) -> None:
        """Send the confirmation events of a client-created item (same ``id``)."""
        confirmed = ev.confirmed_item(item)
        previous = self._previous_of(confirmed.get("id"))
        for name in events:
            if name == "conversation.item.added":
                self.send(ev.conversation_item_added(confirmed, previous))
            elif name == "conversation.item.done":
                self.send(ev.conversation_item_done(confirmed, previous))
            elif name == "conversation.item.created":
                self.send(ev.conversation_item_created(confirmed, previous))

    def _previous_of(self, item_id: Any) -> str | None:
        previous: str | None = None
        for key in self.items:
            if key == item_id:
                return previous
            previous = key
        return previous

    def start_reply(
        self, spec: ReplySpec | None = None, request: Event | None = None
    ) -> str | None:
        """Play one response as if ``request`` (a ``response.create``, or None for a
        VAD-created turn) had arrived. ``spec`` None → the next of ``replies``, else the
        default. Returns the new response id (None for :class:`NoReply` / :class:`ErrorReply`).
        """
        b = self.behaviour
        if spec is None:
            spec = self.replies.pop(0) if self.replies else self._default_spec(request)
        if isinstance(spec, NoReply):
            return None
        if isinstance(spec, ErrorReply):
            eid = request.get("event_id") if request else None
            err = ev.error(
                spec.code, spec.message, eid if isinstance(eid, str) else None, type=spec.type
            )
            self._run_steps([Pause(spec.delay_ms), err] if spec.delay_ms > 0 else [err], None)
            return None
        params = request.get("response") if request else None
        params = params if isinstance(params, dict) else {}
        out_of_band = params.get("conversation") == "none"
        pacing = getattr(spec, "pacing_ms", None)
        call_id = spec.call_id if isinstance(spec, FunctionCallReply) else None
        wants_call = isinstance(spec, FunctionCallReply | CustomReply)
        ctx = ReplyContext(
            response_id=self.new_response_id(),
            item_id=self.new_item_id(),
            call_id=call_id or (self.new_call_id() if wants_call else ""),
            previous_item_id=None if out_of_band else self._last_item_id,
            out_of_band=out_of_band,
            request=request,
            pacing_ms=b.pacing_ms if pacing is None else pacing,
            delta_ms=b.delta_ms,
        )
        text = getattr(spec, "text", None)
        if text is None:
            text = self._reply_text(request)
        audio_ms = getattr(spec, "audio_ms", None)
        steps = build_steps(spec, ctx, text, b.reply_audio_ms if audio_ms is None else audio_ms)
        if not out_of_band:
            kind = "function_call" if isinstance(spec, FunctionCallReply) else "message"
            self.items[ctx.item_id] = {"id": ctx.item_id, "type": kind, "role": "assistant"}
            self._last_item_id = ctx.item_id
            self._pending_user_text = None
        self._run_steps(steps, ctx.response_id)
        return ctx.response_id

    def _default_spec(self, request: Event | None) -> ReplySpec:
        if not self.behaviour.reply:
            return NoReply()
        params = request.get("response") if request else None
        modalities = params.get("output_modalities") if isinstance(params, dict) else None
        if modalities is None:
            modalities = self.session.get("output_modalities")
        if modalities == ["text"]:
            return TextReply()
        return AudioReply()

    def _reply_text(self, request: Event | None) -> str:
        said = say_exactly_text(request)
        if said is not None:
            return said
        source = self.behaviour.reply_text
        if isinstance(source, str):
            return source
        if source is not None:
            return source(self, request)
        if self._pending_user_text:
            return f"You said: {self._pending_user_text}"
        return DEFAULT_REPLY_TEXT

    def cancel_response(
        self, response_id: str | None = None, reason: str = "client_cancelled"
    ) -> bool:
        """End an active response with ``response.done`` status ``cancelled`` (stopping its
        paced reply, if any). ``response_id`` None → the most recent active one."""
        if response_id is None:
            if not self.active_responses:
                return False
            response_id = next(reversed(self.active_responses))
        task = self._reply_tasks.pop(response_id, None)
        if task is not None:
            task.cancel()
        if response_id not in self.active_responses:
            return task is not None
        self.send(
            ev.response_done(
                response_id, "cancelled", status_details={"type": "cancelled", "reason": reason}
            )
        )
        return True

    # ------------------------------------------------------------------ picows callbacks

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.connected_at = time.monotonic()
        self.peer = transport.underlying_transport.get_extra_info("peername")
        b = self.behaviour
        if b.send_session_created:
            body = {"id": f"sess_{self.index + 1}"} if b.minimal_session_events else self.session
            self.send(ev.session_created(body))
        if b.session_updated_on_open:
            self.send(ev.session_updated(None if b.minimal_session_events else self.session))
        self.mock._connected(self)
        self._notify()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._shutdown()
        self.mock._disconnected(self)
        self._notify()

    def _shutdown(self) -> None:
        if not self.closed:
            self.closed = True
            self.closed_at = time.monotonic()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        self._reply_tasks.clear()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.payload_size > self.behaviour.max_message_bytes:
            return  # picows is already closing with 1009; never act on the oversized frame
        msg_type = frame.msg_type
        if msg_type == _TEXT and frame.fin and self._frag is None:
            self._on_text(frame.get_payload_as_bytes())
        elif msg_type == _BINARY and frame.fin and self._frag is None:
            self._on_binary(frame.get_payload_as_bytes())
        elif msg_type == _CLOSE:
            self._on_close_frame(transport, frame)
        elif msg_type in (_TEXT, _BINARY, _CONT):
            self._on_fragment(transport, frame)

    def _on_fragment(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == _CONT:
            if self._frag is None:
                self._protocol_close(1002, "continuation frame without a message")
                return
            self._frag += frame.get_payload_as_memoryview()
        else:
            if self._frag is not None:
                self._protocol_close(1002, "new message inside a fragmented message")
                return
            self._frag = bytearray(frame.get_payload_as_memoryview())
            self._frag_type = frame.msg_type
        if len(self._frag) > self.behaviour.max_message_bytes:
            self._frag = None
            self._protocol_close(1009, "message too big")
            return
        if frame.fin:
            data, kind = bytes(self._frag), self._frag_type
            self._frag = None
            self._frag_type = None
            if kind == _TEXT:
                self._on_text(data)
            else:
                self._on_binary(data)

    def _protocol_close(self, code: int, reason: str) -> None:
        log.warning("mock connection #%d: closing %d: %s", self.index, code, reason)
        self.close(code, reason)

    def _on_close_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.payload_size >= 2:
            self.close_code = _int_code(frame.get_close_code())
            self.close_reason = frame.get_close_reason()
        else:
            self.close_code = 1005  # "no status received"
            self.close_reason = ""
        if not transport.is_close_frame_sent:
            code = self.close_code if self.close_code != 1005 else 1000
            transport.send_close(_close_code(code))
        transport.disconnect()
        self._notify()

    def _on_binary(self, data: bytes) -> None:
        self.binary_received += 1
        self.received.push(Received(time.monotonic(), "binary", data=data))
        hook = self.mock.on_binary
        if hook is not None:
            self._call_hook(hook, data)
        self._notify()

    def _on_text(self, payload: bytes) -> None:
        b = self.behaviour
        if b.echo and payload.startswith(_APPEND_PREFIX) and payload.endswith(b'"}'):
            end = len(payload) - 2
            if payload.find(b'"', _APPEND_PREFIX_LEN, end) < 0:
                self.appends_received += 1
                assert self.transport is not None
                mv = memoryview(payload)
                send_to_client(
                    self.transport,
                    _TEXT,
                    b"".join((_ECHO_PREFIX, mv[_APPEND_PREFIX_LEN:end], _ECHO_SUFFIX)),
                )
                if self._record_appends:
                    self.received.push(Received(time.monotonic(), "text", event=_decode(payload)))
                self._notify()
                return
        self._handle_text(payload)
        self._notify()  # waiters see the message together with the mock's reaction to it

    def _handle_text(self, payload: bytes) -> None:
        try:
            obj = _decode(payload)
        except (msgspec.DecodeError, UnicodeDecodeError, ValueError):
            obj = None
        now = time.monotonic()
        if not isinstance(obj, dict):
            self.received.push(Received(now, "text", data=payload))
            return
        etype = obj.get("type")
        if etype == "input_audio_buffer.append":
            self.appends_received += 1
            if self._record_appends:
                self.received.push(Received(now, "text", event=obj))
        else:
            self.received.push(Received(now, "text", event=obj))
        if self._run_hooks(obj, etype):
            return
        reactions.default(self, obj, etype)

    # ------------------------------------------------------------------ hooks

    def _call_hook(self, hook: Callable[..., Any], *args: Any) -> Any:
        try:
            result = hook(self, *args)
        except Exception as exc:
            self.mock._hook_error(self, exc)
            return True
        if inspect.isawaitable(result):
            self.spawn(result)
            return True
        return result

    def _run_hooks(self, event: Event, etype: Any) -> bool:
        if self.on_event is not None and self._call_hook(self.on_event, event):
            return True
        handlers = self.mock._handlers.get(etype) if isinstance(etype, str) else None
        if handlers:
            for handler in list(handlers):
                if self._call_hook(handler, event):
                    return True
        hook = self.mock.on_event
        return hook is not None and bool(self._call_hook(hook, event))


_KNOWN_CODES = frozenset(int(c.value) for c in WSCloseCode)


def _int_code(code: object) -> int:
    return code.value if isinstance(code, WSCloseCode) else int(cast(int, code))


def _close_code(code: int) -> WSCloseCode:
    # picows takes any integer code; the enum only names the registered ones.
    return WSCloseCode(code) if code in _KNOWN_CODES else cast(WSCloseCode, code)
