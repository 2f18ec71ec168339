"""Test driver for the sans-I/O ``Session``: a virtual clock, a fake audio relay and a scriptable
mock upstream, so that the acceptance scenarios of PROTOCOL.md §13 run without sockets.

Theory of operation. A :class:`Harness` owns one ``Session`` and plays the network layer around
it exactly as ``fastproxy.net.connection`` is meant to: it executes the actions of one
``Session.handle`` call in order before feeding the next event, keeps the Session's timers on a
virtual clock (``StartTimer`` replaces a running timer's deadline; ``advance`` fires due timers in
deadline order), and routes audio through :class:`FakeRelay`, which behaves like the compiled relay
(input/output converters, the audio gate, the armed ``(response_id, item_id)`` fast path, dropped
responses, ``AudioAppended`` reports in manual mode). Everything that leaves the Session is
recorded: ``sent_upstream`` (parsed JSON without ``event_id``; the ids are kept in the parallel
list ``upstream_ids``; relay appends are recorded too, with id ``None``), ``to_client`` (``("json",
dict)`` or ``("binary", bytes)``), closes, logs, and one chronological ``trace``.

The harness is strict about the wire contract, on every test: each ``SendClient``/``SendUpstream``
must hold one compact UTF-8 JSON object (J1: no whitespace, no NaN/Infinity) with a string
``type`` equal to the action's ``type``; every
upstream event except appends carries a unique ``event_id`` of at most 32 characters (J6); nothing
may be sent on a leg after it was closed (or, upstream, before it opened). A breach raises
:class:`HarnessError` at the moment it happens.

The mock upstream is H2 of §13.1: it can answer ``session.update`` with ``session.updated``
(``answer_updates``), confirm every ``conversation.item.create`` with ``conversation.item.added``
then ``conversation.item.done`` (``confirm_items``, optionally a predicate and a delay), and run a
scripted list of events for each ``response.create`` (``script_responses``). Replies are
delivered after the action list that caused them, like messages that travel back over a socket.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from spec_examples import (
    P116_SETTINGS,
    PCM24,
    S0,
    SERVER_VAD,
    TRANSCRIPTION,
    audio_delta,
    audio_done,
    error_event,
    function_call_arguments_done,
    response_created,
    response_done,
    transcript_done,
)
from spec_examples import SEMANTIC_VAD as SEMANTIC_VAD
from spec_examples import Z as Z
from spec_examples import b64 as b64
from spec_examples import function_call_item_added as function_call_item_added
from spec_examples import scripted_create as scripted_create
from spec_examples import text_done as text_done
from spec_examples import transcript_delta as transcript_delta

from fastproxy.audio import Resampler, encode_appends, scan_delta
from fastproxy.protocol import actions as A
from fastproxy.protocol import events as E
from fastproxy.protocol.options import SessionOptions
from fastproxy.protocol.session import Session
from fastproxy.protocol.stats import SessionStats

# ----------------------------------------------------------------------------------------------
# constants and message builders (§13.1 H2-H4, H7); the ones the conformance suite uses too come
# from tests/spec_examples.py and are re-exported from here (H.S0, H.SERVER_VAD, H.text_done, ...)


def default_session(**overrides: Any) -> dict[str, Any]:
    """The ``session`` object of §4.7 (``{"type":"Settings"}`` with default options)."""
    s: dict[str, Any] = {
        "type": "realtime",
        "model": "gpt-realtime",
        "instructions": "",
        "audio": {
            "input": {
                "format": dict(PCM24),
                "transcription": dict(TRANSCRIPTION),
                "turn_detection": dict(SERVER_VAD),
            },
            "output": {"format": dict(PCM24)},
        },
    }
    s.update(overrides)
    return s


def A_bytes(n: int, offset: int = 0) -> bytes:
    """H7 ``A(n)``: ``n`` bytes of non-silent PCM from one fixed pattern, starting at ``offset``."""
    return bytes(((k * 73 + 41) ^ (k >> 3)) & 0xFF for k in range(offset, offset + n))


def session_created() -> dict[str, Any]:
    return {"type": "session.created", "session": {"id": "sess_1"}}


def session_updated() -> dict[str, Any]:
    return {"type": "session.updated", "session": {"type": "realtime"}}


def function_call_done(
    rid: str, call_id: str, name: str, arguments: str = "{}", iid: str = "item_f1"
) -> dict[str, Any]:
    return function_call_arguments_done(rid, iid, call_id, name, arguments)


def item_event(kind: str, item: dict[str, Any] | str) -> dict[str, Any]:
    """``conversation.item.<kind>`` (added/created/done) carrying ``item`` (or ``{"id": item}``)."""
    if isinstance(item, str):
        item = {"id": item, "type": "message"}
    ev: dict[str, Any] = {"type": f"conversation.item.{kind}", "item": item}
    if kind == "added":
        ev["previous_item_id"] = None
    return ev


def speech_started(audio_start_ms: int = 10, item_id: str = "item_u1") -> dict[str, Any]:
    return {
        "type": "input_audio_buffer.speech_started",
        "audio_start_ms": audio_start_ms,
        "item_id": item_id,
    }


def speech_stopped(audio_end_ms: int = 500, item_id: str = "item_u1", **extra: Any) -> dict:
    return {
        "type": "input_audio_buffer.speech_stopped",
        "audio_end_ms": audio_end_ms,
        "item_id": item_id,
        **extra,
    }


def upstream_error(
    code: str | None = None,
    message: str | None = None,
    event_id: str | None = None,
    etype: str = "invalid_request_error",
) -> dict[str, Any]:
    return error_event(code, message, event_id, etype)


def conflict_error(event_id: str | None = None) -> dict[str, Any]:
    return upstream_error(
        "conversation_already_has_active_response",
        "Conversation already has an active response",
        event_id,
    )


def inject_user(content: str) -> dict[str, Any]:
    return {"type": "InjectUserMessage", "content": content}


def inject_agent(message: str) -> dict[str, Any]:
    return {"type": "InjectAgentMessage", "message": message}


def update_prompt(prompt: str) -> dict[str, Any]:
    return {"type": "UpdatePrompt", "prompt": prompt}


def fcr(call_id: str, content: Any = None, name: str | None = None, **kw: Any) -> dict:
    m: dict[str, Any] = {"type": "FunctionCallResponse", "id": call_id}
    if name is not None:
        m["name"] = name
    if content is not None:
        m["content"] = content
    m.update(kw)
    return m


def user_item(x: str, text: str) -> dict[str, Any]:
    return {
        "id": x,
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }


def assistant_item(x: str, text: str) -> dict[str, Any]:
    return {
        "id": x,
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def item_create(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "conversation.item.create", "item": item}


RESPONSE_CREATE = {"type": "response.create"}
COMMIT = {"type": "input_audio_buffer.commit"}


# ----------------------------------------------------------------------------------------------


class HarnessError(AssertionError):
    """The Session broke the action contract (wire rules, sends on a closed leg, ...)."""


class _Identity:
    def process(self, data: bytes) -> bytes:
        return bytes(data)


def _input_converter(fmt: A.AudioFormat | None) -> Any:
    if fmt is None or fmt.encoding == "linear16":
        return Resampler(fmt.rate if fmt else 24000, 24000)
    return _Identity()


def _output_converter(fmt: A.AudioFormat | None) -> Any:
    if fmt is None or fmt.encoding == "linear16":
        return Resampler(24000, fmt.rate if fmt else 24000)
    return _Identity()


class FakeRelay:
    """Behaves like the compiled relay, driven by the Session's relay actions."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.input_format: A.AudioFormat | None = None
        self.output_format: A.AudioFormat | None = None
        self.in_conv: Any = None
        self.out_conv: Any = None
        self.gate_open = False
        self.report_appends = False
        self.armed: tuple[str | None, str | None] | None = None
        self.dropped: set[str] = set()
        self.client_audio_bytes = 0  # running total of binary bytes sent to the client
        self.configure_count = 0
        self.format_changes = 0

    # -- Session actions
    def configure(self, a: A.ConfigureRelay) -> None:
        self.configure_count += 1
        if a.input_format is not None and a.input_format != self.input_format:
            if self.input_format is not None:
                self.format_changes += 1
            self.input_format = a.input_format
            self.in_conv = _input_converter(a.input_format)
        if a.output_format is not None and a.output_format != self.output_format:
            if self.output_format is not None:
                self.format_changes += 1
            self.output_format = a.output_format
            self.out_conv = _output_converter(a.output_format)
        if a.gate_open is not None:
            self.gate_open = a.gate_open
        if a.report_appends is not None:
            self.report_appends = a.report_appends

    def arm(self, a: A.ArmOutput) -> None:
        self.armed = None if a.response_id is None else (a.response_id, a.item_id)

    def drop(self, a: A.DropOutput) -> None:
        self.dropped.add(a.response_id)

    def append(self, data: bytes, *, deferred: bool) -> None:
        """Convert client-format audio and append it upstream (+ AudioAppended if reporting)."""
        if self.in_conv is None:
            self.in_conv = _input_converter(None)
        pcm = self.in_conv.process(data)
        if not pcm:
            return
        for msg in encode_appends(pcm):
            self.h._record_append(msg)
        if self.report_appends:
            ev = E.AudioAppended(len(pcm))
            if deferred:
                self.h._relay_q.append(ev)
            else:
                self.h._deliver(ev)

    def to_client(self, data: bytes) -> None:
        if self.out_conv is None:
            self.out_conv = _output_converter(None)
        out = self.out_conv.process(data)
        if out:
            self.client_audio_bytes += len(out)
            self.h._record_client_binary(out)

    # -- traffic
    def client_binary(self, data: bytes) -> None:
        if len(data) == 0:
            return
        if not self.gate_open:
            self.h._deliver(E.ClientAudio(bytes(data)))
        else:
            self.append(bytes(data), deferred=False)

    def upstream_text(self, data: bytes) -> None:
        r = scan_delta(data)
        if r is not None:
            rid, iid, pcm = r
            if rid in self.dropped:
                self.h.dropped_deltas += 1
                return
            if self.armed == (rid, iid):
                self.h.fast_path_deltas += 1
                if not self.h.client_closed:
                    self.to_client(pcm)
                return
        self.h._deliver(E.UpstreamText(bytes(data), client_audio_bytes=self.client_audio_bytes))


@dataclass
class Step:
    """What one driver call produced (slices of the recordings)."""

    upstream: list[dict[str, Any]] = field(default_factory=list)
    upstream_ids: list[str | None] = field(default_factory=list)
    client: list[tuple[str, Any]] = field(default_factory=list)

    def client_json(self, type_: str | None = None) -> list[dict[str, Any]]:
        return [p for k, p in self.client if k == "json" and (type_ is None or p["type"] == type_)]

    def client_types(self) -> list[str]:
        return [p["type"] if k == "json" else "<binary>" for k, p in self.client]

    def upstream_types(self) -> list[str]:
        return [m.get("type") for m in self.upstream]


def _parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    if not isinstance(data, bytes | bytearray):
        raise HarnessError(f"{what}: data is not bytes: {type(data).__name__}")

    def bad_constant(c: str) -> Any:
        raise HarnessError(f"{what}: non-finite number {c} (J1)")

    try:
        obj = json.loads(bytes(data).decode("utf-8"), parse_constant=bad_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{what}: not UTF-8 JSON: {data[:200]!r}") from exc
    if not isinstance(obj, dict):
        raise HarnessError(f"{what}: not a JSON object: {data[:200]!r}")
    if not isinstance(obj.get("type"), str):
        raise HarnessError(f"{what}: no string type: {data[:200]!r}")
    # J1 "serialised compactly": the compact encoding's length does not depend on key order
    compact = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    if len(compact) != len(data):
        raise HarnessError(f"{what}: not compact JSON (J1): {data[:200]!r}")
    return obj


class Harness:
    """One Session plus its simulated surroundings. Times are virtual milliseconds."""

    def __init__(
        self,
        options: SessionOptions | None = None,
        *,
        connection_id: str | None = None,
        stats: SessionStats | None = None,
        strict: bool = True,
        **option_kwargs: Any,
    ) -> None:
        if options is None:
            options = SessionOptions(**option_kwargs)
        elif option_kwargs:
            raise TypeError("give options or option keywords, not both")
        self.options = options
        self.stats = stats if stats is not None else SessionStats()
        self.connection_id = connection_id or str(uuid.uuid4())
        self.session = Session(options, connection_id=self.connection_id, stats=self.stats)
        self.strict = strict
        self.now = 0.0
        self.relay = FakeRelay(self)
        self._seq = itertools.count()
        self.timers: dict[str, tuple[float, int]] = {}
        self._scheduled: list[tuple[float, int, Callable[[], None]]] = []
        self._relay_q: deque[E.Event] = deque()
        self._mock_q: deque[Callable[[], None]] = deque()
        self._busy = False
        # leg state
        self.started = False
        self.upstream_open = False
        self.upstream_closed = False
        self.client_closed = False
        # recordings
        self.sent_upstream: list[dict[str, Any]] = []
        self.upstream_ids: list[str | None] = []
        self.upstream_times: list[float] = []
        self.all_upstream: list[dict[str, Any]] = []
        self.all_event_ids: list[str] = []
        self.to_client: list[tuple[str, Any]] = []
        self.client_times: list[float] = []
        self.all_client: list[tuple[str, Any]] = []
        self.logs: list[A.Log] = []
        self.actions: list[tuple[float, A.Action]] = []
        self.trace: list[tuple[float, str, Any]] = []
        self.client_close: tuple[int, str] | None = None
        self.upstream_close: tuple[int, str] | None = None
        self.client_close_count = 0
        self.upstream_close_count = 0
        self.late_sends: list[tuple[str, Any]] = []
        self.fired_timers: list[tuple[float, str]] = []
        self.dropped_deltas = 0
        self.fast_path_deltas = 0
        self.delivered: list[tuple[float, E.Event]] = []
        # mock upstream (§13.1 H2)
        self.confirm_items: bool | Callable[[dict[str, Any]], bool] = False
        self.confirm_delay_ms: float = 0
        self.answer_updates: bool = False
        self.answer_update_delay_ms: float = 0
        self._response_scripts: deque[Any] = deque()
        self.on_response_create: Callable[[Harness, str | None, dict[str, Any]], None] | None = None
        self.on_upstream_send: Callable[[Harness, dict[str, Any], str | None], None] | None = None

    # ------------------------------------------------------------------ clock
    def advance(self, ms: float) -> Step:
        """Move the clock ``ms`` forward, firing due timers and scheduled events in order."""
        return self.at(self.now + ms)

    def at(self, t: float) -> Step:
        """Move the clock to absolute time ``t`` (never backwards)."""
        if t < self.now:
            raise ValueError(f"time goes forward only ({t} < {self.now})")
        mark = self._mark()
        while True:
            nxt = self._next_due(t)
            if nxt is None:
                break
            deadline, _seq, kind, payload = nxt
            self.now = deadline
            if kind == "timer":
                del self.timers[payload]
                self.fired_timers.append((self.now, payload))
                # the relay's running total travels with every timer (events.TimerFired)
                self._deliver(E.TimerFired(payload, self.relay.client_audio_bytes))
                self._settle()
            else:
                heapq.heappop(self._scheduled)
                payload()
                self._settle()
        self.now = t
        return self._since(mark)

    def _next_due(self, t: float) -> tuple[float, int, str, Any] | None:
        best: tuple[float, int, str, Any] | None = None
        for name, (deadline, seq) in self.timers.items():
            if deadline <= t and (best is None or (deadline, seq) < best[:2]):
                best = (deadline, seq, "timer", name)
        if self._scheduled:
            d, s, fn = self._scheduled[0]
            if d <= t and (best is None or (d, s) < best[:2]):
                best = (d, s, "sched", fn)
        return best

    def schedule(self, delay_ms: float, fn: Callable[[], Any]) -> None:
        """Run ``fn`` (e.g. a mock upstream send) ``delay_ms`` from now."""
        heapq.heappush(self._scheduled, (self.now + delay_ms, next(self._seq), fn))

    def schedule_upstream(self, delay_ms: float, obj: Any) -> None:
        self.schedule(delay_ms, lambda: self.upstream(obj))

    def timer_deadline(self, name: str) -> float | None:
        t = self.timers.get(name)
        return None if t is None else t[0]

    # ------------------------------------------------------------------ drivers
    def start(self) -> Step:
        mark = self._mark()
        if self.started:
            raise RuntimeError("already started")
        self.started = True
        self._execute(self.session.start(self.now))
        self._settle()
        return self._since(mark)

    def open_upstream(self, send_created: bool = True) -> Step:
        """The upstream handshake completes (and the H2 mock sends ``session.created``)."""
        mark = self._mark()
        if self.upstream_closed:
            return self._since(mark)
        self.upstream_open = True
        self._deliver(E.UpstreamOpened())
        if send_created and not self.upstream_closed:
            self.upstream(session_created())
        self._settle()
        return self._since(mark)

    def client(self, msg: dict[str, Any] | list[Any] | str | bytes) -> Step:
        """A client text message (dicts/lists are JSON-encoded compactly)."""
        if isinstance(msg, dict | list):
            data = json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode()
        elif isinstance(msg, str):
            data = msg.encode()
        else:
            data = bytes(msg)
        mark = self._mark()
        if not self.client_closed:
            self._deliver(E.ClientText(data))
            self._settle()
        return self._since(mark)

    def client_audio(self, data: bytes) -> Step:
        """A client binary message, through the relay."""
        mark = self._mark()
        if not self.client_closed:
            self.relay.client_binary(bytes(data))
            self._settle()
        return self._since(mark)

    def upstream(self, msg: dict[str, Any] | str | bytes) -> Step:
        """An upstream text message, through the relay's delta fast path."""
        if isinstance(msg, dict):
            data = json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode()
        elif isinstance(msg, str):
            data = msg.encode()
        else:
            data = bytes(msg)
        mark = self._mark()
        if not self.upstream_open:
            raise RuntimeError("upstream message before open_upstream()")
        if not self.upstream_closed:
            self.relay.upstream_text(data)
            self._settle()
        return self._since(mark)

    def upstream_binary(self, data: bytes) -> Step:
        mark = self._mark()
        if self.upstream_open and not self.upstream_closed:
            self._deliver(E.UpstreamBinary(len(data)))
            self._settle()
        return self._since(mark)

    def event(self, ev: E.Event) -> Step:
        """Feed any event directly (closes, overflows, connect failures, drain...)."""
        mark = self._mark()
        if isinstance(ev, E.UpstreamOpened):
            return self.open_upstream(send_created=False)
        if isinstance(ev, E.UpstreamClosed | E.UpstreamConnectFailed):
            if self.upstream_closed:
                return self._since(mark)
            self.upstream_closed = True
        if isinstance(ev, E.ClientClosed):
            if self.client_closed:
                return self._since(mark)
            self.client_closed = True
        self._deliver(ev)
        self._settle()
        return self._since(mark)

    def ready(self, settings: dict[str, Any] | None = None, *, clear: bool = True) -> Harness:
        """H3 READY-setup: start, upstream open (+ ``session.created``), the Settings, the mock's
        ``session.updated``; then clear the recordings (``clear=False`` keeps them)."""
        self.start()
        self.open_upstream()
        self.client(S0 if settings is None else settings)
        ups = [m for m in self.sent_upstream if m["type"] == "session.update"]
        assert len(ups) == 1, f"READY-setup: expected one session.update, got {self.sent_upstream}"
        self.upstream(session_updated())
        assert any(k == "json" and p["type"] == "SettingsApplied" for k, p in self.to_client), (
            f"READY-setup: no SettingsApplied in {self.to_client}"
        )
        assert self.session.phase == "READY", self.session.phase
        if clear:
            self.clear()
        return self

    def clear(self) -> None:
        """Forget what was recorded so far (``all_upstream``/``all_client`` keep everything)."""
        self.sent_upstream.clear()
        self.upstream_ids.clear()
        self.upstream_times.clear()
        self.to_client.clear()
        self.client_times.clear()
        self.logs.clear()

    # ------------------------------------------------------------------ mock upstream
    def script_responses(self, *scripts: Iterable[Any]) -> None:
        """For each later ``response.create`` the Session sends, play the next script: a list
        of upstream messages, each a dict/str sent at once or ``(delay_ms, msg)`` relative to the
        ``response.create``. A script may also be a callable ``f(harness, event_id, create)``."""
        self._response_scripts.extend(scripts)

    def _mock_after_send(self, obj: dict[str, Any], eid: str | None) -> None:
        t = obj.get("type")
        if self.on_upstream_send is not None:
            self.on_upstream_send(self, obj, eid)
        if t == "session.update" and self.answer_updates:
            self._reply(self.answer_update_delay_ms, session_updated())
        elif t == "conversation.item.create" and self.confirm_items:
            item = obj.get("item")
            ok = self.confirm_items is True or (
                callable(self.confirm_items) and self.confirm_items(item)
            )
            if ok and isinstance(item, dict):
                self._reply(self.confirm_delay_ms, item_event("added", item))
                self._reply(self.confirm_delay_ms, item_event("done", item))
        elif t == "response.create":
            if self.on_response_create is not None:
                self.on_response_create(self, eid, obj)
            elif self._response_scripts:
                script = self._response_scripts.popleft()
                if callable(script):
                    script(self, eid, obj)
                else:
                    for step in script:
                        if isinstance(step, tuple):
                            self._reply(step[0], step[1])
                        else:
                            self._reply(0, step)

    def _reply(self, delay_ms: float, msg: Any) -> None:
        if delay_ms:
            self.schedule_upstream(delay_ms, msg)
        else:
            self._mock_q.append(lambda: self.upstream(msg))

    # ------------------------------------------------------------------ core loop
    def _deliver(self, ev: E.Event) -> None:
        self.delivered.append((self.now, ev))
        self.trace.append((self.now, "event", ev))
        actions = self.session.handle(ev, self.now)
        self._execute(actions)

    def _settle(self) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            while self._relay_q or self._mock_q:
                if self._relay_q:
                    self._deliver(self._relay_q.popleft())
                else:
                    self._mock_q.popleft()()
        finally:
            self._busy = False

    def _execute(self, actions: Any) -> None:
        if not isinstance(actions, list):
            raise HarnessError(f"handle() must return a list, got {type(actions).__name__}")
        for a in actions:
            self.actions.append((self.now, a))
            self._do(a)

    def _do(self, a: Any) -> None:
        if isinstance(a, A.SendUpstream):
            obj = _parse_json_object(a.data, "SendUpstream")
            if obj["type"] != a.type:
                raise HarnessError(f"SendUpstream.type {a.type!r} != JSON type {obj['type']!r}")
            eid = obj.pop("event_id", None)
            if obj["type"] != "input_audio_buffer.append":
                if not isinstance(eid, str) or not eid or len(eid) > 32:
                    raise HarnessError(f"J6: bad or missing event_id {eid!r} on {obj['type']}")
                if eid in self.all_event_ids:
                    raise HarnessError(f"J6: event_id {eid!r} reused")
                self.all_event_ids.append(eid)
            self._record_upstream(obj, eid)
            if not (self.upstream_closed or not self.upstream_open):
                self._mock_after_send(obj, eid)
        elif isinstance(a, A.SendClient):
            obj = _parse_json_object(a.data, "SendClient")
            if obj["type"] != a.type:
                raise HarnessError(f"SendClient.type {a.type!r} != JSON type {obj['type']!r}")
            self._record_client("json", obj)
        elif isinstance(a, A.SendAudioUpstream):
            if not self._upstream_sendable("SendAudioUpstream", len(a.data)):
                return
            self.relay.append(bytes(a.data), deferred=True)
        elif isinstance(a, A.SendAudioToClient):
            if self.client_closed:
                self._late("client", ("SendAudioToClient", len(a.data)))
                return
            self.relay.to_client(bytes(a.data))
        elif isinstance(a, A.ConfigureRelay):
            self.relay.configure(a)
        elif isinstance(a, A.ArmOutput):
            self.relay.arm(a)
        elif isinstance(a, A.DropOutput):
            self.relay.drop(a)
        elif isinstance(a, A.StartTimer):
            if not isinstance(a.delay_ms, int | float) or a.delay_ms < 0:
                raise HarnessError(f"bad timer delay {a!r}")
            self.timers[a.name] = (self.now + a.delay_ms, next(self._seq))
        elif isinstance(a, A.CancelTimer):
            self.timers.pop(a.name, None)
        elif isinstance(a, A.CloseClient):
            self.client_close_count += 1
            if self.client_closed:
                if self.client_close is not None:
                    self._late("client", a)
                return
            self.client_closed = True
            self.client_close = (a.code, a.reason)
            self.trace.append((self.now, "close_client", (a.code, a.reason)))
        elif isinstance(a, A.CloseUpstream):
            self.upstream_close_count += 1
            if self.upstream_closed:
                if self.upstream_close is not None:
                    self._late("upstream", a)
                return
            self.upstream_closed = True
            self.upstream_close = (a.code, a.reason)
            self.trace.append((self.now, "close_upstream", (a.code, a.reason)))
        elif isinstance(a, A.Log):
            self.logs.append(a)
        else:
            raise HarnessError(f"unknown action {a!r}")

    # ------------------------------------------------------------------ recording
    def _late(self, leg: str, what: Any) -> None:
        self.late_sends.append((leg, what))
        if self.strict:
            raise HarnessError(f"send on the {leg} leg after it was closed: {what!r}")

    def _upstream_sendable(self, what: str, detail: Any) -> bool:
        if self.upstream_closed:
            self._late("upstream", (what, detail))
            return False
        if not self.upstream_open:
            self.late_sends.append(("upstream-before-open", (what, detail)))
            if self.strict:
                raise HarnessError(f"{what} before the upstream opened: {detail!r}")
            return False
        return True

    def _record_upstream(self, obj: dict[str, Any], eid: str | None) -> None:
        if not self._upstream_sendable("SendUpstream", obj):
            return
        self.sent_upstream.append(obj)
        self.upstream_ids.append(eid)
        self.upstream_times.append(self.now)
        self.all_upstream.append(obj)
        self.trace.append((self.now, "upstream", obj))

    def _record_append(self, msg: bytes | str) -> None:
        data = msg.encode() if isinstance(msg, str) else bytes(msg)
        obj = _parse_json_object(data, "append")
        if obj["type"] != "input_audio_buffer.append" or "event_id" in obj:
            raise HarnessError(f"bad append {data[:100]!r}")
        self._record_upstream(obj, None)

    def _record_client(self, kind: str, payload: Any) -> None:
        if self.client_closed:
            self._late("client", (kind, payload))
            return
        self.to_client.append((kind, payload))
        self.client_times.append(self.now)
        self.all_client.append((kind, payload))
        self.trace.append((self.now, "client", (kind, payload)))

    def _record_client_binary(self, data: bytes) -> None:
        self._record_client("binary", data)

    def _mark(self) -> tuple[int, int]:
        return len(self.sent_upstream), len(self.to_client)

    def _since(self, mark: tuple[int, int]) -> Step:
        u, c = mark
        u = min(u, len(self.sent_upstream))
        c = min(c, len(self.to_client))
        return Step(
            list(self.sent_upstream[u:]), list(self.upstream_ids[u:]), list(self.to_client[c:])
        )

    # ------------------------------------------------------------------ queries
    def upstream_types(self) -> list[str]:
        return [m["type"] for m in self.sent_upstream]

    def up(self, type_: str) -> list[dict[str, Any]]:
        return [m for m in self.sent_upstream if m["type"] == type_]

    def count_up(self, type_: str) -> int:
        return sum(1 for m in self.sent_upstream if m["type"] == type_)

    def control_upstream(self) -> list[dict[str, Any]]:
        """Upstream events other than appends."""
        return [m for m in self.sent_upstream if m["type"] != "input_audio_buffer.append"]

    def appended(self) -> list[bytes]:
        """Decoded payloads of the appends recorded since the last clear."""
        return [
            base64.b64decode(m["audio"], validate=True)
            for m in self.sent_upstream
            if m["type"] == "input_audio_buffer.append"
        ]

    def last_event_id(self, type_: str) -> str:
        for m, eid in zip(reversed(self.sent_upstream), reversed(self.upstream_ids), strict=True):
            if m["type"] == type_:
                assert eid is not None
                return eid
        raise AssertionError(f"no {type_} sent upstream: {self.upstream_types()}")

    def event_id_where(self, pred: Callable[[dict[str, Any]], bool]) -> str:
        for m, eid in zip(self.sent_upstream, self.upstream_ids, strict=True):
            if pred(m):
                assert eid is not None
                return eid
        raise AssertionError(f"no matching upstream event in {self.sent_upstream}")

    def item_event_id(self, item_id: str) -> str:
        return self.event_id_where(
            lambda m: m["type"] == "conversation.item.create" and m["item"].get("id") == item_id
        )

    def client_json(self, type_: str | None = None) -> list[dict[str, Any]]:
        return [
            p for k, p in self.to_client if k == "json" and (type_ is None or p["type"] == type_)
        ]

    def client_types(self, *, history: bool = True) -> list[str]:
        out = [p["type"] if k == "json" else "<binary>" for k, p in self.to_client]
        return out if history else [t for t in out if t != "History"]

    def client_binaries(self) -> list[bytes]:
        return [p for k, p in self.to_client if k == "binary"]

    def count_client(self, type_: str) -> int:
        return sum(1 for k, p in self.to_client if k == "json" and p["type"] == type_)

    def warnings(self, code: str | None = None) -> list[dict[str, Any]]:
        return [w for w in self.client_json("Warning") if code is None or w.get("code") == code]

    def errors(self, code: str | None = None) -> list[dict[str, Any]]:
        return [w for w in self.client_json("Error") if code is None or w.get("code") == code]

    def trace_index(self, pred: Callable[[tuple[float, str, Any]], bool]) -> int:
        for i, entry in enumerate(self.trace):
            if pred(entry):
                return i
        raise AssertionError("no matching trace entry")

    def first_time_up(self, type_: str) -> float:
        for m, t in zip(self.sent_upstream, self.upstream_times, strict=True):
            if m["type"] == type_:
                return t
        raise AssertionError(f"no {type_} upstream")

    def times_up(self, type_: str) -> list[float]:
        return [
            t
            for m, t in zip(self.sent_upstream, self.upstream_times, strict=True)
            if m["type"] == type_
        ]

    def times_client(self, type_: str) -> list[float]:
        return [
            t
            for (k, p), t in zip(self.to_client, self.client_times, strict=True)
            if (k == "json" and p["type"] == type_) or (k == "binary" and type_ == "<binary>")
        ]

    def total_violations(self) -> int:
        return sum(self.stats.violations.values())


def ready_harness(settings: dict[str, Any] | None = None, **option_kwargs: Any) -> Harness:
    """A Harness after H3 READY-setup with the given Settings and options, recordings cleared."""
    return Harness(**option_kwargs).ready(settings)


def settings_with(**agent: Any) -> dict[str, Any]:
    """``S0`` with extra ``agent`` keys (``think`` entries merge with S0's prompt)."""
    s = json.loads(json.dumps(S0))
    think = agent.pop("think", None)
    if think:
        s["agent"]["think"].update(think)
    s["agent"].update(agent)
    return s


# ----------------------------------------------------------------------------------------------
# scenario recipes shared by several test modules


def run_p57(
    h: Harness | None = None, *, answer_late: bool = True, second: Iterable[Any] = (), **opts: Any
) -> Harness:
    """P-57 (and P-58/P-91 variants): inject, a function-call response, the function result.

    ``answer_late``: the FunctionCallResponse comes 300 ms after resp_1 ended (P-57) or while
    it runs (P-58, the caller then ends resp_1). ``second``: the script for the second
    ``response.create``."""
    if h is None:
        h = Harness(**opts)
        h.ready(settings_with(think={"functions": [{"name": "get_time"}]}))
    h.confirm_items = True
    first = [response_created("resp_1"), function_call_done("resp_1", "call_1", "get_time", "{}")]
    if answer_late:
        first.append(response_done("resp_1"))
    h.script_responses(first, list(second))
    h.client(inject_user("What time is it?"))
    if answer_late:
        h.advance(300)
    h.client(fcr("call_1", '{"time":"12:00"}', name="get_time"))
    return h


def run_p116(**opts: Any) -> Harness:
    """P-116: the function-call round trip (confirming mock). Recordings start after READY."""
    h = Harness(**opts)
    h.ready(P116_SETTINGS)
    h.confirm_items = True
    h.script_responses(
        [
            response_created("resp_1"),
            function_call_done("resp_1", "call_1", "get_current_time", "{}"),
            response_done("resp_1"),
        ],
        [
            response_created("resp_2"),
            audio_delta("resp_2", "item_a2", A_bytes(960)),
            audio_done("resp_2", "item_a2"),
            transcript_done("resp_2", "item_a2", "It is 12:00."),
            response_done("resp_2"),
        ],
    )
    h.client(inject_user("What time is it?"))
    assert h.client_json("FunctionCallRequest"), h.to_client
    h.client(fcr("call_1", '{"time":"12:00"}'))
    return h


def run_p102_until_barge_in(**opts: Any) -> Harness:
    """P-102 up to the barge-in at t=700 (server_vad, PCM 24000 output, resp_1 active)."""
    h = Harness(**opts).ready()
    h.upstream(response_created("resp_1"))
    h.upstream(audio_delta("resp_1", "item_a1", A_bytes(48000)))
    h.upstream(audio_delta("resp_1", "item_a1", A_bytes(48000, 48000)))
    h.at(700)
    h.upstream(speech_started(700))
    return h
