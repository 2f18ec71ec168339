"""Fault injection over real sockets (PROTOCOL.md §3.6, §6.7, §3.4, §10).

Each test runs the real proxy, the mock upstream and a real picows client on 127.0.0.1 and makes
one peer misbehave: the upstream resets or closes abnormally mid-response, mid-function-call or
before READY; never ends a response; stops reading while the client streams; the client vanishes
without a close frame, or streams far faster than real time. Every affected client must get the
documented ``Error`` and close code, nothing else, and the proxy must release the pair entirely
(``net_kit.wait_torn_down``). The environment's exit checks add: no exception logged by proxy
code, no event-loop error, no ``internal_error``, the wire contract on every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from typing import Any

import pytest
from e2e_kit import LOOP_KINDS, A, created, delta, done, fcall, now, run, transcript_done
from hardening_kit import deep_array
from net_kit import HEnv, MiB, rss_bytes, wait_torn_down

from fastproxy.testing import Pause, events

LOOPS = pytest.mark.parametrize("loop_kind", LOOP_KINDS)
INJECT = {"type": "InjectUserMessage", "content": "What time is it?"}


def reset(conn: Any, _request: Any) -> None:
    conn.reset()


def close_with(code: int, reason: str) -> Any:
    def step(conn: Any, _request: Any) -> None:
        conn.close(code, reason)

    return step


async def expect_error_and_close(c: Any, code: str, close_code: int) -> dict[str, Any]:
    err = await c.wait_type("Error", timeout=5)
    assert err["code"] == code, err
    await c.wait_closed(timeout=5)
    assert (c.close_code, c.close_reason) == (close_code, code)
    errors = c.of("Error")
    assert errors == [err], f"more than one Error: {errors}"
    return err


# --------------------------------------------------------------------------------------------
# the upstream fails


async def _reset_mid_response(loop_kind: str) -> None:
    async with HEnv(loop_kind, confirming=True) as e:
        c = await e.ready()
        e.on_response_create(
            [
                created("resp_1"),
                delta("resp_1", "it_1", A(960)),
                delta("resp_1", "it_1", A(960, 960)),
                Pause(30),
                reset,
            ]
        )
        c.send(INJECT)
        err = await expect_error_and_close(c, "upstream_closed", 1011)
        assert "1006" in err["description"]
        assert c.binaries() == [A(960), A(960, 960)]  # what arrived before the reset
        await wait_torn_down(e)
        assert e.metric("fastproxy_sessions_total", outcome="upstream_failed") == 1


@LOOPS
def test_upstream_reset_mid_response(loop_kind: str) -> None:
    run(_reset_mid_response(loop_kind), loop_kind)


async def _fault_mid_function_call(loop_kind: str, fault: str) -> None:
    async with HEnv(loop_kind, confirming=True) as e:
        c = await e.ready()
        item = events.function_call_item("item_f1", "call_1", "get_time", "")
        first = [
            created("resp_1"),
            events.output_item_added("resp_1", item),
            events.function_call_arguments_delta("resp_1", "item_f1", "call_1", '{"tz":'),
            Pause(30),
        ]
        if fault == "close":
            e.on_response_create([*first, close_with(1011, "boom")])
        elif fault == "reset":
            e.on_response_create([*first, reset])
        else:  # the call completed; the upstream dies while the client computes its result
            e.on_response_create(
                [*first[:3], fcall("resp_1", "item_f1", "call_1", "get_time"), done("resp_1")]
            )
        c.send(INJECT)
        await c.wait_type("AgentThinking")
        if fault == "after_request":
            await c.wait_type("FunctionCallRequest")
            c.up.reset()
        err = await expect_error_and_close(c, "upstream_closed", 1011)
        if fault == "close":
            assert "1011" in err["description"] and "boom" in err["description"]
        else:
            assert "1006" in err["description"]
        if fault == "after_request":  # the late result goes nowhere and breaks nothing
            assert c.transport is not None
        await wait_torn_down(e)


@LOOPS
@pytest.mark.parametrize("fault", ["close", "reset", "after_request"])
def test_upstream_fails_mid_function_call(loop_kind: str, fault: str) -> None:
    run(_fault_mid_function_call(loop_kind, fault), loop_kind)


async def _fault_before_ready(loop_kind: str, fault: str) -> None:
    async with HEnv(loop_kind, mock={"answer_session_update": False}) as e:
        c = await e.connect()
        u = await e.upstream_of(c)
        c.send({"type": "Settings"})
        await u.wait_for_event("session.update")
        c.send_binary(A(960))  # held until READY, which never comes
        if fault == "reset":
            u.reset()
        else:
            u.close(1011, "upstream overloaded")
        err = await expect_error_and_close(c, "upstream_unavailable", 1011)
        assert ("1006" if fault == "reset" else "1011") in err["description"]
        assert c.types() == ["Welcome", "Error"]
        assert not u.events_of("input_audio_buffer.append")  # R5: nothing before READY
        await wait_torn_down(e)


@LOOPS
@pytest.mark.parametrize("fault", ["reset", "close"])
def test_upstream_fails_before_ready(loop_kind: str, fault: str) -> None:
    run(_fault_before_ready(loop_kind, fault), loop_kind)


async def _never_response_done(loop_kind: str) -> None:
    """§6.7 T19: the safety timer frees the slot; the next turn gets its response.create."""
    mock = {"withhold_events": frozenset({"response.done"})}
    async with HEnv(loop_kind, confirming=True, sequencer_timeout_ms=300, mock=mock) as e:
        c = await e.ready()
        turn = [
            created("resp_1"),
            delta("resp_1", "it_1", A(960)),
            events.audio_done("resp_1", "it_1"),
            transcript_done("resp_1", "it_1", "It is noon."),
            done("resp_1"),  # withheld by the mock
        ]
        requests = e.on_response_create(turn, [created("resp_2"), done("resp_2")])
        c.send(INJECT)
        await c.wait_type("ConversationText", count=2)  # the echo, then the transcript
        t0 = now()
        warning = await c.wait_type("Warning", timeout=3)
        assert warning["code"] == "sequencer_timeout"
        assert "resp_1" in warning["description"]
        assert 0.1 <= now() - t0 <= 2.0
        assert c.stats.turns_completed["timeout"] == 1
        c.send({"type": "InjectUserMessage", "content": "Are you there?"})
        await c.up.wait_for(lambda u: len(u.events_of("response.create")) == 2, timeout=3)
        assert len(requests) == 2 and c.up.withheld  # response.done was really withheld
        assert not c.closed
        assert e.metric("fastproxy_turns_completed_total", status="timeout") == 1
        assert e.metric("fastproxy_protocol_violations_total", kind="sequencer_timeout") == 1


@LOOPS
def test_upstream_never_sends_response_done(loop_kind: str) -> None:
    run(_never_response_done(loop_kind), loop_kind)


async def _upstream_stops_reading(loop_kind: str) -> None:
    """The upstream hangs (stops reading) while the client streams: the proxy's buffers stay
    bounded (it stops reading the client at the high-water mark), and after the stall timeout
    (min(ping_interval_ms, ping_timeout_ms), see README "Hardening") the upstream is treated as
    over its send-buffer limit (§3.4): Error upstream_closed, client 1011, upstream dropped."""
    async with HEnv(loop_kind, ping_interval_ms=600, ping_timeout_ms=600) as e:
        c = await e.ready()
        conn = c.conn
        c.up.stop_reading()
        rss0 = rss_bytes()
        peak_rss, peak_up, peak_client_read = rss0, 0, 0
        frame = A(9600)  # 200 ms of audio
        sent = 0
        t0 = now()
        while not c.closed and now() - t0 < 8:
            if c.close_code is None:
                c.send_binary(frame)
                sent += 1
            upstream = conn.upstream
            if upstream is not None and not upstream.is_disconnected:
                peak_up = max(peak_up, upstream.underlying_transport.get_write_buffer_size())
            peak_rss = max(peak_rss, rss_bytes())
            peak_client_read = max(peak_client_read, sent)
            with contextlib.suppress(TimeoutError):  # the client respects flow control
                await asyncio.wait_for(c.drain(), 0.02)
            await asyncio.sleep(0.001)
        stalled_for = now() - t0
        err = await expect_error_and_close(c, "upstream_closed", 1011)
        assert "not reading" in err["description"]
        assert 0.5 <= stalled_for <= 6.0, stalled_for
        assert peak_up < 2 * MiB, f"upstream write buffer reached {peak_up} bytes"
        assert peak_rss - rss0 < 48 * MiB, f"RSS grew by {(peak_rss - rss0) / MiB:.1f} MiB"
        await wait_torn_down(e, timeout=4)  # the close handshake is dropped after 2 s


@LOOPS
def test_upstream_stops_reading_while_client_streams(loop_kind: str) -> None:
    run(_upstream_stops_reading(loop_kind), loop_kind, timeout=30)


async def _upstream_goes_silent(loop_kind: str) -> None:
    """An idle session whose upstream hangs (reads nothing, answers no ping): the proxy pings
    the upstream leg too, so the dead upstream is found within ping_interval_ms +
    min(ping_timeout_ms, ping_interval_ms) even with no audio flowing: Error upstream_closed,
    client 1011, both legs torn down."""
    async with HEnv(loop_kind, ping_interval_ms=200, ping_timeout_ms=200) as e:
        c = await e.ready()
        conn = c.conn
        c.up.stop_reading()
        t0 = now()
        await expect_error_and_close(c, "upstream_closed", 1011)
        assert now() - t0 < 2.5, now() - t0
        await wait_torn_down(e, [conn], timeout=5)
        assert conn.outcome == "upstream_failed"
        assert e.metric("fastproxy_sessions_total", outcome="upstream_failed") == 1


@LOOPS
def test_silent_upstream_is_detected_by_ping(loop_kind: str) -> None:
    run(_upstream_goes_silent(loop_kind), loop_kind, timeout=30)


# --------------------------------------------------------------------------------------------
# the client fails


async def _client_vanishes(loop_kind: str, streaming: bool) -> None:
    """Half-open client: no close frame, no more reads or pongs. The ping timeout detects it
    (ping_interval_ms + min(ping_timeout_ms, ping_interval_ms)); both legs are cleaned up and
    the upstream gets a normal close (§3.6 row 1)."""
    async with HEnv(loop_kind, confirming=True, ping_interval_ms=200, ping_timeout_ms=200) as e:
        c = await e.ready()
        conn, u = c.conn, c.up
        if streaming:  # the agent keeps talking to a client that is gone
            u.send(created("resp_1"))
            for k in range(50):
                u.send(delta("resp_1", "it_1", A(9600, k)))
        c.transport.underlying_transport.pause_reading()  # gone: reads nothing, answers nothing
        t0 = now()
        await u.wait_closed(timeout=5)
        assert u.close_code == 1000
        assert now() - t0 < 2.5
        await wait_torn_down(e, [conn], timeout=5)
        # the ping timeout ends it; with agent audio backing up, the stall rule may be first
        outcomes = ("client_closed", "error") if streaming else ("client_closed",)
        assert conn.outcome in outcomes
        assert e.metric("fastproxy_sessions_total", outcome=conn.outcome) == 1


@LOOPS
@pytest.mark.parametrize("streaming", [False, True], ids=["idle", "agent_speaking"])
def test_client_vanishes_without_close_frame(loop_kind: str, streaming: bool) -> None:
    run(_client_vanishes(loop_kind, streaming), loop_kind)


async def _client_faster_than_real_time(loop_kind: str) -> None:
    """Twenty minutes of 24 kHz audio sent as fast as flow control allows: every byte arrives
    upstream in order (no loss), and the proxy's buffers and memory stay bounded meanwhile."""
    seconds = 1200
    async with HEnv(loop_kind, mock={"record_appends": False}) as e:
        c = await e.ready()
        conn = c.conn
        received = hashlib.sha256()
        count = [0]

        def on_append(_u: Any, event: dict[str, Any]) -> bool:
            import base64

            pcm = base64.b64decode(event["audio"])
            received.update(pcm)
            count[0] += len(pcm)
            return True

        e.mock.on("input_audio_buffer.append", on_append)
        sent = hashlib.sha256()
        total = 0
        rss0 = rss_bytes()
        peak_rss = rss0
        peak_buffers = 0
        t0 = now()
        for k in range(seconds * 50):
            frame = A(960, (k * 960) % 65536)
            c.send_binary(frame)
            sent.update(frame)
            total += len(frame)
            if k % 50 == 0:
                await c.drain()
                up = conn.upstream.underlying_transport.get_write_buffer_size()
                peak_buffers = max(peak_buffers, up)
                peak_rss = max(peak_rss, rss_bytes())
                await asyncio.sleep(0)
        elapsed = now() - t0
        await c.up.wait_for(lambda _u: count[0] >= total, timeout=30)
        assert count[0] == total and received.digest() == sent.digest()
        assert conn.relay.frames_in == seconds * 50
        assert peak_buffers < 2 * MiB, peak_buffers
        assert peak_rss - rss0 < 48 * MiB, f"RSS grew by {(peak_rss - rss0) / MiB:.1f} MiB"
        assert elapsed < seconds / 5, f"only {seconds / elapsed:.0f}x real time"


@LOOPS
def test_client_faster_than_real_time(loop_kind: str) -> None:
    run(_client_faster_than_real_time(loop_kind), loop_kind, timeout=60)


async def _deep_json_at_debug(loop_kind: str) -> None:
    """Found by fuzzing: at log level debug the connection reads each message's ``type`` for
    its log record; a deeply nested message raised RecursionError there, inside picows'
    callback, which dropped the client (1011) and logged a traceback."""
    async with HEnv(loop_kind, log_level="debug") as e:
        c = await e.ready()
        mark = c.mark()
        c.send_text(b'{"x":' + deep_array(5000).encode() + b',"type":"InjectUserMessage"}')
        err = await c.wait_type("Error", since=mark)
        assert err["code"] == "invalid_client_json"
        c.send_text(b'{"type":"KeepAlive","x":' + deep_array(300).encode() + b"}")  # J5
        c.up.send(json.loads('{"type":"rate_limits.updated","x":[]}'))
        c.up.send_raw_text(b'{"x":' + deep_array(5000).encode() + b',"type":"error"}')
        c.send(INJECT)
        await c.wait_type("ConversationText")
        # the two legs are separate sockets: the upstream's message may be read after the reply
        for _ in range(200):  # polled: no client message marks the upstream one's arrival
            if c.stats.violations["invalid_upstream_json"]:
                break
            await asyncio.sleep(0.01)
        assert not c.closed and c.types(mark) == ["Error", "ConversationText", "History"]
        assert c.stats.violations["invalid_upstream_json"] == 1


@LOOPS
def test_deeply_nested_json_at_debug_level(loop_kind: str) -> None:
    run(_deep_json_at_debug(loop_kind), loop_kind)
