"""Property tests of the Session: random interleavings of client messages, upstream events and
timer expiries, checked against an independent model of the response slot (PROTOCOL.md §6).

A random run has three parts. (1) Random operations: client messages (Settings, Inject*,
FunctionCallResponse for requested and unknown call ids, UpdatePrompt, UpdateSpeak, KeepAlive,
junk, audio), upstream events (session.updated, item confirmations of ids the proxy sent or not,
response.created/done with new or known ids, function calls, audio deltas, text/audio done, errors
including ``conversation_already_has_active_response`` naming recent event ids, speech events,
junk) and clock advances that fire the Session's timers. (2) Settling: the mock becomes
cooperative (answers updates, confirms items, answers every ``response.create`` with
``response.created`` + ``response.done``), every open response is ended, every requested call is
answered, and time runs until nothing is left. (3) Probes: an ``InjectUserMessage`` and a fresh
function-call round must each yield exactly one ``response.create``.

Checked on every step, from the events the test itself sent (the model never reads the
Session's state):

- I1: no ``response.create`` while the slot is taken: taken from a proxy ``response.create`` until
  the ``response.created`` that answers it is followed by its ``response.done``, its correlated
  rejection (T17a) or the safety timeout (T19); taken by every announced response until its
  ``response.done`` or the timeout; taken after a conflict error that arrives while free (T16);
- I2: no ``session.update`` while the slot is taken;
- R5: no ``conversation.item.create`` and no append before the ``session.updated`` answering the
  Settings' ``session.update``;
- W3: every ``SendClient`` is one JSON object with a string ``type`` (the harness checks every
  action), and every ``SendAudioToClient`` carries audio decoded from an upstream delta;
- the harness's wire checks (J6 event ids, nothing sent on a closed leg) and: the Session never
  raises.

Checked once settled (I4-I6, liveness): every item of an ``InjectUserMessage`` or of the first
``FunctionCallResponse`` for a call id is followed, after its confirmation, by a response start
(a non-scripted ``response.create``, a new upstream ``response.created`` with no create pending,
or a conflict while free), unless it was rejected or a sequencer timeout forced the queue while it
waited; nothing more happens when time runs on; and the probes of part (3) hold.
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from fastproxy.protocol import actions as A
from fastproxy.protocol import events as E

try:
    from tests.unit import harness as H
except ImportError:  # pragma: no cover
    import harness as H  # type: ignore[no-redef]

CONFLICT = "conversation_already_has_active_response"
SEQ_TIMEOUT = 1000


class SlotModel:
    """The response slot as the spec defines it, driven only by what crosses the wire."""

    def __init__(self) -> None:
        self.pending: str | None = None  # "proxy:<event_id>" or "server"
        self.open: set[str] = set()
        self.announced: set[str] = set()
        self.ready = False
        self.settings_eid: str | None = None
        self.pending_updates: list[str] = []
        self.problems: list[str] = []

    @property
    def active(self) -> bool:
        return self.pending is not None or bool(self.open)

    # upstream events, before the Session handles them
    def on_upstream(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            return
        t = obj.get("type")
        if t == "session.updated":
            if self.pending_updates:
                eid = self.pending_updates.pop(0)
                if eid == self.settings_eid:
                    self.ready = True
        elif t == "response.created":
            rid = (obj.get("response") or {}).get("id")
            if isinstance(rid, str) and rid not in self.announced:
                self.announced.add(rid)
                self.pending = None
                self.open.add(rid)
        elif t == "response.done":
            rid = (obj.get("response") or {}).get("id")
            if isinstance(rid, str):
                self.open.discard(rid)
        elif t == "error":
            err = obj.get("error") if isinstance(obj.get("error"), dict) else {}
            code, eid = err.get("code"), err.get("event_id")
            if code == CONFLICT:
                if not self.active:
                    self.pending = "server"
                if eid in self.pending_updates:
                    self.pending_updates.remove(eid)
            elif eid is not None:
                if eid in self.pending_updates:
                    self.pending_updates.remove(eid)
                if self.pending == f"proxy:{eid}":
                    self.pending = None

    def on_timer(self, name: str) -> None:
        if name == "sequencer" and self.active:  # T19 gives up every open response
            self.pending = None
            self.open.clear()

    # what the Session sends upstream
    def on_send(self, obj: dict[str, Any], eid: str | None) -> None:
        t = obj["type"]
        if t == "response.create":
            if self.active:
                self.problems.append(
                    f"I1: response.create while active (pending={self.pending}, "
                    f"open={sorted(self.open)})"
                )
            self.pending = f"proxy:{eid}"
        elif t == "session.update":
            if self.settings_eid is None:
                self.settings_eid = eid
            elif self.active:
                self.problems.append(
                    f"I2: session.update while active (pending={self.pending}, "
                    f"open={sorted(self.open)})"
                )
            assert eid is not None
            self.pending_updates.append(eid)
        elif t in ("conversation.item.create", "input_audio_buffer.append") and not self.ready:
            self.problems.append(f"R5: {t} before the Settings' session.updated")


class ModelHarness(H.Harness):
    """A Harness that feeds the slot model in the exact interleaving of the run."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.model = SlotModel()
        self.delta_payloads: set[bytes] = set()
        self.audio_actions: list[bytes] = []
        self.sent_log: list[tuple[dict[str, Any], str | None]] = []
        # liveness bookkeeping (ticks order everything that crosses the Session's boundary)
        self.tick = 0
        self.item_sent: dict[str, int] = {}
        self.item_eid: dict[str, str] = {}
        self.item_confirmed: dict[str, int] = {}
        self.failed_items: set[str] = set()
        self.start_ticks: list[int] = []
        self.seq_warning_ticks: list[int] = []
        self.reply_items: set[str] = set()

    def _deliver(self, ev: E.Event) -> None:
        self.tick += 1
        if isinstance(ev, E.UpstreamText):
            try:
                obj = json.loads(ev.data)
            except ValueError:
                obj = None
            self._liveness_in(obj)
            self.model.on_upstream(obj)
            if isinstance(obj, dict) and obj.get("type") == "response.output_audio.delta":
                with contextlib.suppress(Exception):
                    self.delta_payloads.add(base64.b64decode(obj["delta"], validate=True))
        elif isinstance(ev, E.TimerFired):
            self.model.on_timer(ev.name)
        super()._deliver(ev)

    def _record_upstream(self, obj: dict[str, Any], eid: str | None) -> None:
        self.tick += 1
        if self.upstream_open and not self.upstream_closed:
            self.model.on_send(obj, eid)
            self.sent_log.append((obj, eid))
            t = obj["type"]
            if t == "conversation.item.create" and isinstance(obj["item"].get("id"), str):
                self.item_sent[obj["item"]["id"]] = self.tick
                if eid is not None:
                    self.item_eid[eid] = obj["item"]["id"]
            elif (
                t == "response.create" and "response" not in obj
            ):  # scripted ones discharge nothing
                self.start_ticks.append(self.tick)
        super()._record_upstream(obj, eid)

    def _record_client(self, kind: str, payload: Any) -> None:
        self.tick += 1
        if kind == "json" and payload.get("code") == "sequencer_timeout":
            self.seq_warning_ticks.append(self.tick)
        super()._record_client(kind, payload)

    def _liveness_in(self, obj: Any) -> None:
        """Starts (§6.4 ``start``, which discharges), confirmations and rejections."""
        if not isinstance(obj, dict):
            return
        t, m = obj.get("type"), self.model
        if t in ("conversation.item.added", "conversation.item.created", "conversation.item.done"):
            iid = (obj.get("item") or {}).get("id") if isinstance(obj.get("item"), dict) else None
            if iid in self.item_sent and iid not in self.item_confirmed:
                self.item_confirmed[iid] = self.tick
        elif t == "response.created":
            rid = (obj.get("response") or {}).get("id")
            if isinstance(rid, str) and rid not in m.announced and m.pending is None:
                self.start_ticks.append(self.tick)  # T11
        elif t == "error" and isinstance(obj.get("error"), dict):
            code, eid = obj["error"].get("code"), obj["error"].get("event_id")
            if code == CONFLICT:
                if not m.active:
                    self.start_ticks.append(self.tick)  # T16 start(server)
            elif eid in self.item_eid:
                self.failed_items.add(self.item_eid[eid])

    def unanswered_items(self) -> list[str]:
        """Reply/ToolReply items (registered by the run) that no response start followed: each
        needs a start after its confirmation, unless it failed or a sequencer timeout forced the
        queue while it waited."""
        out = []
        for x in sorted(self.reply_items):
            if x in self.failed_items:
                continue
            sent, conf = self.item_sent[x], self.item_confirmed.get(x)
            if conf is None:
                out.append(f"{x} (never confirmed)")
                continue
            if any(sent < w < conf for w in self.seq_warning_ticks):
                continue
            if not any(st > conf for st in self.start_ticks):
                out.append(x)
        return out

    def _do(self, a: Any) -> None:
        if isinstance(a, A.SendAudioToClient):
            self.audio_actions.append(bytes(a.data))
        super()._do(a)


# ---------------------------------------------------------------------------------------------
# operations

TEXTS = st.sampled_from(["Hello", "What time is it?", "Please hold.", "X", "  padded  ", "é ☃"])
SETTINGS = st.sampled_from(
    [
        H.S0,
        H.settings_with(think={"functions": [{"name": "get_time"}]}),
        H.settings_with(greeting="Hi there!"),
        H.settings_with(
            context={
                "messages": [
                    {"type": "History", "role": "user", "content": "Hello"},
                    {
                        "type": "History",
                        "function_calls": [
                            {"id": "call_h", "name": "get_time", "arguments": "{}", "response": "9"}
                        ],
                    },
                ]
            }
        ),
        {
            "type": "Settings",
            "audio": {
                "input": {"encoding": "linear16", "sample_rate": 16000},
                "output": {"encoding": "mulaw"},
            },
        },
        {"type": "Settings", "audio": {"input": {"encoding": "opus"}}},
        {"type": "Settings", "agent": {"think": {"prompt": 5}, "greeting": 7}},
    ]
)
CLIENT_JUNK = st.sampled_from(
    [
        b"not json",
        b"[1,2]",
        b"\xff\xfe",
        b'{"type":"CustomProbe"}',
        b'{"foo":1}',
        b'{"type":"InjectUserMessage"}',
        b'{"type":"FunctionCallResponse","content":"x"}',
        b'{"type":"UpdateSpeak","speak":{"provider":{"model":"m"}}}',
        b"",
    ]
)
UPSTREAM_JUNK = st.sampled_from(
    [
        "not json",
        '{"no_type":true}',
        '{"type":"response.brand_new_thing"}',
        '{"type":"error"}',
        '{"type":"rate_limits.updated","rate_limits":[]}',
        '{"type":"response.created"}',
        '{"type":"response.done","response":{}}',
        '{"type":"conversation.item.added"}',
        '{"type":"response.output_audio.delta","response_id":"r","item_id":"i","delta":"%%%"}',
        '{"type":"response.function_call_arguments.done","arguments":"{}"}',
    ]
)
ERROR_CODES = st.sampled_from(
    [CONFLICT, CONFLICT, "invalid_value", "server_error", "session_expired", None]
)

OP = st.one_of(
    st.tuples(st.just("settings"), SETTINGS),
    st.tuples(st.just("inject_user"), TEXTS),
    st.tuples(st.just("inject_agent"), TEXTS),
    st.tuples(st.just("fcr_known"), st.integers(0, 7), st.sampled_from(["out", {"a": 1}, None])),
    st.tuples(st.just("fcr_unknown"), st.sampled_from(["call_zz", "c1", "x"])),
    st.tuples(st.just("update_prompt"), TEXTS),
    st.tuples(st.just("update_speak"), st.sampled_from(["marin", "cedar", None])),
    st.tuples(st.just("keepalive")),
    st.tuples(st.just("client_junk"), CLIENT_JUNK),
    st.tuples(st.just("client_audio"), st.sampled_from([0, 1, 640, 960, 4801, 9600])),
    st.tuples(st.just("session_updated")),
    st.tuples(
        st.just("confirm"),
        st.integers(0, 15),
        st.sampled_from(["added", "created", "done", "other"]),
    ),
    st.tuples(st.just("response_created"), st.integers(0, 9)),
    st.tuples(
        st.just("response_done"),
        st.integers(0, 9),
        st.sampled_from(["completed", "cancelled", "failed"]),
    ),
    st.tuples(st.just("function_call"), st.integers(0, 9)),
    st.tuples(
        st.just("audio_delta"),
        st.integers(0, 9),
        st.sampled_from(["item_a", "item_b"]),
        st.sampled_from([0, 480, 4800]),
    ),
    st.tuples(
        st.just("output_done"), st.integers(0, 9), st.sampled_from(["audio", "text", "transcript"])
    ),
    st.tuples(st.just("error"), ERROR_CODES, st.integers(-2, 6)),
    st.tuples(
        st.just("speech"), st.sampled_from(["started", "stopped", "committed", "timeout_triggered"])
    ),
    st.tuples(st.just("upstream_junk"), UPSTREAM_JUNK),
    st.tuples(st.just("upstream_binary")),
    st.tuples(st.just("advance"), st.sampled_from([1, 50, 250, 400, 999, 1000, 3000])),
)


class Run:
    def __init__(self, h: ModelHarness) -> None:
        self.h = h
        self.resp_ids: list[str] = []
        self.n_resp = 0
        self.n_call = 0
        self.requested: list[str] = []
        self.answered: set[str] = set()

    # -- helpers
    def requested_calls(self) -> list[str]:
        out = []
        for k, p in self.h.all_client:
            if k == "json" and p["type"] == "FunctionCallRequest":
                out.extend(f["id"] for f in p["functions"])
        return out

    def resp(self, k: int) -> str:
        if self.resp_ids and k < 7:
            return self.resp_ids[k % len(self.resp_ids)]
        self.n_resp += 1
        rid = f"resp_{self.n_resp}"
        self.resp_ids.append(rid)
        return rid

    def sent_eids(self) -> list[str]:
        h = self.h
        return [eid for _m, eid in h.sent_log if eid is not None and eid != h.model.settings_eid]

    def register(self, step: H.Step, ready: bool) -> None:
        if ready:  # held messages are not tracked (their items go out at READY)
            for m in step.upstream:
                if m["type"] == "conversation.item.create":
                    self.h.reply_items.add(m["item"]["id"])

    def up(self, obj: Any) -> None:
        h = self.h
        if h.upstream_open and not h.upstream_closed:
            h.upstream(obj)

    # -- one operation
    def do(self, op: tuple[Any, ...]) -> None:
        h, kind = self.h, op[0]
        ready = h.model.ready
        if kind == "settings":
            h.client(op[1])
        elif kind == "inject_user":
            self.register(h.client(H.inject_user(op[1])), ready)
        elif kind == "inject_agent":
            h.client(H.inject_agent(op[1]))
        elif kind == "fcr_known":
            calls = self.requested_calls()
            if calls:
                cid = calls[op[1] % len(calls)]
                step = h.client(H.fcr(cid, op[2]))
                if cid not in self.answered:  # a repeated result adds no entry (T2)
                    self.register(step, ready)
                self.answered.add(cid)
        elif kind == "fcr_unknown":
            self.register(h.client(H.fcr(op[1], "r")), ready)
        elif kind == "update_prompt":
            h.client(H.update_prompt(op[1]))
        elif kind == "update_speak":
            prov = {"voice": op[1]} if op[1] else {"model": "aura"}
            h.client({"type": "UpdateSpeak", "speak": {"provider": prov}})
        elif kind == "keepalive":
            h.client({"type": "KeepAlive"})
        elif kind == "client_junk":
            h.client(op[1])
        elif kind == "client_audio":
            h.client_audio(H.A_bytes(op[1]))
        elif kind == "session_updated":
            self.up(H.session_updated())
        elif kind == "confirm":
            ids = [
                m["item"].get("id")
                for m in h.all_upstream
                if m["type"] == "conversation.item.create"
            ]
            iid = ids[op[1] % len(ids)] if ids and op[2] != "other" else "item_other"
            ev = "added" if op[2] == "other" else op[2]
            self.up(H.item_event(ev, iid))
        elif not ready:
            return  # no response traffic before the session is configured (see module doc)
        elif kind == "response_created":
            self.up(H.response_created(self.resp(op[1])))
        elif kind == "response_done":
            self.up(H.response_done(self.resp(op[1]), op[2]))
        elif kind == "function_call":
            self.n_call += 1
            self.up(
                H.function_call_done(
                    self.resp(op[1]), f"call_{self.n_call}", "get_time", iid=f"item_f{self.n_call}"
                )
            )
        elif kind == "audio_delta":
            self.up(H.audio_delta(self.resp(op[1]), op[2], H.A_bytes(op[3])))
        elif kind == "output_done":
            rid = self.resp(op[1])
            if op[2] == "audio":
                self.up(H.audio_done(rid, "item_a"))
            elif op[2] == "text":
                self.up(H.text_done(rid, "item_a", "Sure."))
            else:
                self.up(H.transcript_done(rid, "item_b", "Sure."))
        elif kind == "error":
            eids = self.sent_eids()
            k = op[2]
            eid = None if k < 0 or not eids else eids[-1 - (k % len(eids))]
            if k == -2:
                eid = "bogus_id"
            self.up(H.upstream_error(op[1], "msg", eid))
        elif kind == "speech":
            if op[1] in ("started", "stopped"):
                self.up(
                    {
                        "type": f"input_audio_buffer.speech_{op[1]}",
                        "audio_start_ms": 5,
                        "audio_end_ms": 9,
                        "item_id": "item_u",
                    }
                )
            else:
                self.up({"type": f"input_audio_buffer.{op[1]}", "item_id": "item_u"})
        elif kind == "upstream_junk":
            self.up(op[1])
        elif kind == "upstream_binary":
            h.upstream_binary(b"\x00" * 10)
        if kind == "advance":
            h.advance(op[1])

    # -- settling
    def cooperative(self) -> None:
        h = self.h
        h.answer_updates = True
        h.confirm_items = True

        def answer(hh: H.Harness, _eid: str | None, _obj: dict[str, Any]) -> None:
            self.n_resp += 1
            rid = f"resp_c{self.n_resp}"
            hh._reply(0, H.response_created(rid))
            hh._reply(0, H.response_done(rid))

        h.on_response_create = answer

    def settle(self) -> None:
        h = self.h
        for _ in range(len(h.model.pending_updates)):
            self.up(H.session_updated())
        for m in list(h.all_upstream):
            if m["type"] == "conversation.item.create" and isinstance(m["item"].get("id"), str):
                self.up(H.item_event("added", m["item"]["id"]))
        for _round in range(4):
            if h.model.pending is not None:
                self.n_resp += 1
                rid = f"resp_s{self.n_resp}"
                self.up(H.response_created(rid))
                self.up(H.response_done(rid))
            for rid in sorted(h.model.open):
                self.up(H.response_done(rid))
            for cid in self.requested_calls():
                if cid not in self.answered:
                    self.answered.add(cid)
                    self.register(h.client(H.fcr(cid, "late")), True)
            h.advance(4 * SEQ_TIMEOUT)
            for _ in range(len(h.model.pending_updates)):
                self.up(H.session_updated())


def _check(h: ModelHarness) -> None:
    assert not h.model.problems, h.model.problems
    for data in h.audio_actions:
        assert data in h.delta_payloads, "SendAudioToClient with bytes that no delta carried"


def _quiet(h: ModelHarness, run: Run) -> None:
    up, cl = len(h.all_upstream), len(h.all_client)
    h.advance(10 * SEQ_TIMEOUT)
    assert h.all_upstream[up:] == [], f"not quiescent: {h.all_upstream[up:]}"
    assert [p for _k, p in h.all_client[cl:]] == [], "client output while quiescent"
    assert not h.model.active


def _probe(h: ModelHarness, run: Run) -> None:
    """With everything settled, one inject and one function round each get one response.create."""
    before = [m["type"] for m in h.all_upstream].count("response.create")
    h.client(H.inject_user("probe"))
    h.advance(2 * SEQ_TIMEOUT)
    after = [m["type"] for m in h.all_upstream].count("response.create")
    assert after - before == 1, "an InjectUserMessage on an idle, confirming upstream"
    run.n_resp += 1
    rid = f"resp_p{run.n_resp}"
    h.upstream(H.response_created(rid))
    h.upstream(H.function_call_done(rid, "call_probe", "get_time", iid="item_probe"))
    h.upstream(H.response_done(rid))
    assert "call_probe" in run.requested_calls()
    before = [m["type"] for m in h.all_upstream].count("response.create")
    h.client(H.fcr("call_probe", "42"))
    h.advance(2 * SEQ_TIMEOUT)
    after = [m["type"] for m in h.all_upstream].count("response.create")
    assert after - before == 1, "a FunctionCallResponse for a requested call"


def _run(
    ops: list[tuple[Any, ...]],
    open_at: int,
    settings_at: int,
    mode: str,
    greeting: str,
    auto_answer: bool,
    log: Any = note,
) -> str:
    h = ModelHarness(
        turn_detection=mode,
        greeting=greeting,
        sequencer_timeout_ms=SEQ_TIMEOUT,
        queue_max_messages=64,
    )
    h.answer_updates = auto_answer
    run = Run(h)
    h.start()
    plan = list(ops)
    plan.insert(min(settings_at, len(plan)), ("settings", H.S0))
    plan.insert(min(open_at, len(plan)), ("open",))
    for op in plan:
        log(repr(op))
        if op[0] == "open":
            if not h.upstream_open:
                h.open_upstream()
            continue
        if h.client_closed or h.upstream_closed:
            break
        if (
            op[0]
            not in (
                "settings",
                "inject_user",
                "inject_agent",
                "fcr_known",
                "fcr_unknown",
                "update_prompt",
                "update_speak",
                "keepalive",
                "client_junk",
                "client_audio",
                "advance",
                "upstream_binary",
            )
            and not h.upstream_open
        ):
            continue
        run.do(op)
        _check(h)
    if h.client_closed or h.upstream_closed:
        _check(h)
        return "closed early"
    if not h.upstream_open:
        h.open_upstream()
    run.cooperative()
    run.settle()
    _check(h)
    if h.client_closed or h.upstream_closed or not h.model.ready:
        return "closed while settling"
    _quiet(h, run)
    _check(h)
    assert h.unanswered_items() == [], "items no response answered (I6)"
    _probe(h, run)
    _check(h)
    return "probed"


@settings(
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    ops=st.lists(OP, min_size=8, max_size=60),
    open_at=st.integers(0, 3),
    settings_at=st.integers(0, 4),
    mode=st.sampled_from(["server_vad", "server_vad", "manual", "semantic_vad"]),
    greeting=st.sampled_from(["text", "spoken", "off"]),
    auto_answer=st.booleans(),
)
def test_random_interleavings_keep_the_slot_invariants(
    ops: list[tuple[Any, ...]],
    open_at: int,
    settings_at: int,
    mode: str,
    greeting: str,
    auto_answer: bool,
) -> None:
    outcome = _run(ops, open_at, settings_at, mode, greeting, auto_answer)
    event(outcome)


def test_probe_on_a_fresh_session() -> None:
    """The property run's probes, with no random prefix (a sanity check of the model itself)."""
    assert _run([], 0, 0, "server_vad", "text", True, log=lambda _m: None) == "probed"


# ---------------------------------------------------------------------------------------------
# W9: upstream events caused by client messages keep the clients' order, audio and JSON alike,
# whether the messages were held before READY (§3.3, replayed at step 5 of the ready sequence)
# or arrived in READY (audio on the relay's fast path, JSON through the Session).

CLIENT_MIX = st.one_of(
    st.tuples(st.just("audio"), st.integers(1, 300)),
    st.tuples(st.just("inject"), st.sampled_from(["a", "b", "c"])),
    st.tuples(st.just("fcr"), st.sampled_from(["call_a", "call_b"])),
    st.tuples(st.just("prompt"), st.sampled_from(["p", "q"])),
    st.tuples(st.just("keepalive")),
    st.tuples(st.just("junk")),
    st.tuples(st.just("settings")),
)


@settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    before=st.lists(CLIENT_MIX, max_size=12),
    after=st.lists(CLIENT_MIX, max_size=8),
    open_at=st.integers(0, 12),
    encoding=st.sampled_from(["linear16", "mulaw"]),
)
def test_w9_order_of_client_caused_events(
    before: list[tuple[Any, ...]], after: list[tuple[Any, ...]], open_at: int, encoding: str
) -> None:
    h = H.Harness()
    h.start()
    settings_msg = {**H.S0, "audio": {"input": {"encoding": encoding}}}
    expected: list[tuple[str, Any]] = []
    offset = 0
    width = 2 if encoding == "linear16" else 1

    def send(op: tuple[Any, ...]) -> None:
        nonlocal offset
        if op[0] == "audio":
            n = op[1] * width  # whole samples: every message is one append of its own bytes
            data = H.A_bytes(n, offset)
            offset += n
            expected.append(("audio", data))
            h.client_audio(data)
        elif op[0] == "inject":
            expected.append(("item", op[1]))
            h.client(H.inject_user(op[1]))
        elif op[0] == "fcr":
            expected.append(("item", op[1]))
            h.client(H.fcr(op[1], "out"))
        elif op[0] == "prompt":
            h.client(H.update_prompt(op[1]))
        elif op[0] == "keepalive":
            h.client({"type": "KeepAlive"})
        elif op[0] == "junk":
            h.client(b"{nope")
        else:
            h.client(settings_msg)

    plan: list[tuple[Any, ...]] = list(before)
    plan.insert(min(open_at, len(plan)), ("open",))
    first_settings_sent = False
    for op in plan:
        if op == ("open",):
            h.open_upstream()
        elif op[0] == "settings" and not first_settings_sent:
            first_settings_sent = True
            send(op)
        else:
            send(op)
    if not first_settings_sent:
        h.client(settings_msg)
    if not h.upstream_open:
        h.open_upstream()
    assert [m["type"] for m in h.sent_upstream] == ["session.update"], h.sent_upstream
    h.upstream(H.session_updated())
    for op in after:
        send(op)

    def token(m: dict[str, Any]) -> tuple[str, Any] | None:
        if m["type"] == "input_audio_buffer.append":
            return ("audio", base64.b64decode(m["audio"]))
        if m["type"] == "conversation.item.create":
            item = m["item"]
            if item["type"] == "function_call_output":
                return ("item", item["call_id"])
            return ("item", item["content"][0]["text"])
        return None

    got = [t for t in (token(m) for m in h.sent_upstream) if t is not None]
    assert got == expected
    assert h.client_close is None
