"""Helpers of the hardening suite: fuzz settings, the documented-outcome oracle, JSON builders.

Theory of operation. Every fuzz target checks one invariant: *the documented outcome, or a
documented error — nothing else* (issue #8). For the sans-I/O Session that means, after each
input: the Session did not take its ``internal_error`` path (it catches every exception, so an
exception escaping a rule shows up there); every message to the client has exactly one of the
shapes of PROTOCOL.md §8.1 (:func:`check_client_message`); every ``Error``/``Warning`` code is
one the section for that kind of input documents; a close carries a documented code; and the
connection still works for a valid follow-up (the targets' ``follow_up`` helpers). The wire
contract (J1, J6, nothing after a close) is enforced by the strict unit harness itself.

``FUZZ_EXAMPLES`` (environment variable) raises every target's ``max_examples`` for the long
run described in README "Hardening"; the default keeps the normal test run fast.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import re
from typing import Any

import harness as H
from hypothesis import HealthCheck, settings

from fastproxy.protocol import actions as A

FUZZ_COUNTS: collections.Counter[str] = collections.Counter()
REPORT: list[str] = []  # figures the socket-level tests report (chaos, soak), printed at the end
_LONG = os.environ.get("FASTPROXY_FUZZ_EXAMPLES")


def fuzz_settings(default_examples: int, *, long_share: float = 1.0) -> Any:
    """hypothesis settings for one target: ``default_examples`` in the normal run,
    ``FASTPROXY_FUZZ_EXAMPLES`` (times ``long_share`` for the costliest targets) in the long
    run."""
    examples = max(default_examples, int(int(_LONG) * long_share)) if _LONG else default_examples
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
        print_blob=True,
    )


def count_example(target: str) -> None:
    FUZZ_COUNTS[target] += 1


# --------------------------------------------------------------------------------------------
# PROTOCOL.md §8.1: the exact shape of every message the proxy sends to the client

_STR = str
_SHAPES: dict[str, dict[str, Any]] = {
    "Welcome": {"request_id": _STR},
    "SettingsApplied": {},
    "PromptUpdated": {},
    "SpeakUpdated": {},
    "ConversationText": {"role": _STR, "content": _STR},
    "UserStartedSpeaking": {},
    "AgentThinking": {"content": _STR},
    "FunctionCallRequest": {"functions": list},
    "AgentStartedSpeaking": {"total_latency": float, "tts_latency": float, "ttt_latency": float},
    "AgentAudioDone": {},
    "InjectionRefused": {"message": _STR},
    "Error": {"description": _STR, "code": _STR},
    "Warning": {"description": _STR, "code": _STR},
    "UtteranceEnd": {"channel": list, "last_word_end": float},
}
_TRANSCRIPT_KEYS = {
    "type",
    "transcript",
    "is_final",
    "speech_final",
    "channel",
    "channel_index",
    "start",
    "duration",
    "alternatives",
}

# §10.4 proxy codes carried by an Error / Warning (the HTTP-only codes never reach a socket).
PROXY_ERROR_CODES = frozenset(
    {
        "upstream_unavailable",
        "upstream_closed",
        "invalid_client_json",
        "disallowed_client_message_type",
        "unsupported_audio_format",
        "client_queue_overflow",
        "message_too_large",
    }
)
PROXY_WARNING_CODES = frozenset({"settings_field_ignored", "sequencer_timeout"})
# What a client text message can cause (§7.1, §4.1, §3.4); everything else would be a bug.
CLIENT_INPUT_ERRORS = frozenset(
    {
        "invalid_client_json",
        "disallowed_client_message_type",
        "unsupported_audio_format",
        "client_queue_overflow",
    }
)
CLIENT_INPUT_WARNINGS = frozenset({"settings_field_ignored"})
CLIENT_CLOSES = {"unsupported_audio_format": 1008, "client_queue_overflow": 1008}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_client_message(obj: dict[str, Any]) -> None:
    """Assert that ``obj`` has exactly one of the shapes of PROTOCOL.md §8.1 (J3, J4)."""
    t = obj.get("type")
    assert isinstance(t, str), obj
    keys = set(obj) - {"type"}
    if t == "History":
        if "function_calls" in obj:
            assert keys == {"function_calls"}, obj
            calls = obj["function_calls"]
            assert isinstance(calls, list) and len(calls) == 1, obj
            call = calls[0]
            assert set(call) == {"id", "name", "client_side", "arguments", "response"}, obj
            assert call["client_side"] is True, obj
            assert all(isinstance(call[k], str) for k in ("id", "name", "arguments", "response"))
        else:
            assert keys == {"role", "content"}, obj
            assert obj["role"] in ("user", "assistant") and isinstance(obj["content"], str), obj
        return
    if t == "Transcript":
        assert set(obj) == _TRANSCRIPT_KEYS, obj
        assert isinstance(obj["transcript"], str) and isinstance(obj["is_final"], bool), obj
        alternatives = obj["alternatives"]
        assert isinstance(alternatives, list) and len(alternatives) == 1, obj
        assert alternatives[0]["transcript"] == obj["transcript"], obj
        return
    shape = _SHAPES.get(t)
    assert shape is not None, f"P→C message of an undocumented type: {obj}"
    assert keys == set(shape), f"P→C {t} keys {sorted(keys)} != {sorted(shape)}: {obj}"
    for key, kind in shape.items():
        value = obj[key]
        if kind is float:
            assert _number(value), obj
        else:
            assert isinstance(value, kind), obj
    if t == "ConversationText":
        assert obj["role"] in ("user", "assistant"), obj
    elif t == "AgentThinking":
        assert obj["content"] == "", obj
    elif t == "AgentStartedSpeaking":
        assert all(obj[k] >= 0 for k in shape), obj
    elif t == "FunctionCallRequest":
        functions = obj["functions"]
        assert len(functions) == 1, obj
        fn = functions[0]
        assert set(fn) == {"id", "name", "arguments", "client_side"}, obj
        assert fn["client_side"] is True and all(
            isinstance(fn[k], str) and fn[k] for k in ("id", "name")
        ), obj
        assert isinstance(fn["arguments"], str), obj
    elif t == "UtteranceEnd":
        channel = obj["channel"]
        assert channel and all(isinstance(c, int) and not isinstance(c, bool) for c in channel)
    elif t in ("Error", "Warning"):
        assert obj["code"], obj


def check_session_alive(h: Any) -> None:
    """The Session never took its internal-error path (no exception escaped a rule)."""
    internal = h.stats.violations.get("internal_error", 0)
    if internal:
        traces = [log.message for log in h.logs if "internal error" in log.message]
        raise AssertionError(f"Session internal_error: {traces[-1:] or h.logs[-3:]}")


def new_client_json(h: Any, mark: int) -> list[dict[str, Any]]:
    """JSON messages the client received since ``mark`` (an index into ``h.all_client``)."""
    return [p for k, p in h.all_client[mark:] if k == "json"]


def check_outcome(
    h: Any,
    mark: int,
    *,
    errors: frozenset[str] | set[str],
    warnings: frozenset[str] | set[str],
) -> list[dict[str, Any]]:
    """Check what one input produced: shapes, documented codes, no internal error."""
    check_session_alive(h)
    out = new_client_json(h, mark)
    for obj in out:
        check_client_message(obj)
        if obj["type"] == "Error":
            assert obj["code"] in errors, f"undocumented Error for this input: {obj}"
        elif obj["type"] == "Warning":
            assert obj["code"] in warnings, f"undocumented Warning for this input: {obj}"
    return out


# --------------------------------------------------------------------------------------------
# the unit harness, tolerant of number spelling only

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_WHITESPACE = re.compile(rb"[ \t\n\r]")


def is_compact(data: bytes) -> bool:
    """J1 "serialised compactly": no whitespace outside strings."""
    return _WHITESPACE.search(_STRINGS.sub(b'""', data)) is None


class Harness(H.Harness):
    """The strict unit harness, except that its compactness check (which compares lengths with
    Python's ``json.dumps``) accepts msgspec's spelling of numbers: ``1e308`` vs ``1e+308``
    (J2: numbers compare by value). Every other wire check stays as strict."""

    def _do(self, a: Any) -> None:
        if isinstance(a, A.SendUpstream | A.SendClient) and is_compact(a.data):
            obj = json.loads(a.data)
            canonical = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
            if canonical != a.data and len(canonical) != len(a.data):
                a = dataclasses.replace(a, data=canonical)
        super()._do(a)


# --------------------------------------------------------------------------------------------
# hostile values and texts

HUGE = "x" * 1_200_000  # > 1 MiB: big, but under every default limit


def deep_array(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth
