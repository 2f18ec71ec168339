"""Hostile client text messages for the fuzz targets (PROTOCOL.md §2, §4, §7).

Valid templates of every client message type (a ``Settings`` that uses every mapped field, and
Deepgram fields the proxy must ignore), every JSON path inside them, values of every wrong JSON
type, and raw-text corruptions that no JSON encoder produces (invalid UTF-8, ``1e999``,
``NaN``, a lone surrogate, deep nesting, a BOM, trailing garbage). ``mutate`` applies one
change at one path; ``encode_with_raw`` splices a raw token where a placeholder was encoded.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hardening_kit import deep_array, deep_object
from hypothesis import strategies as st

Path = tuple[str | int, ...]

FULL_SETTINGS: dict[str, Any] = {
    "type": "Settings",
    "tags": ["t1"],
    "mip_opt_out": False,
    "experimental": False,
    "flags": {"history": True},
    "audio": {
        "input": {"encoding": "linear16", "sample_rate": 16000},
        "output": {"encoding": "linear16", "sample_rate": 24000, "container": "none"},
    },
    "agent": {
        "language": "en",
        "listen": {"provider": {"type": "deepgram", "model": "nova-3"}},
        "think": {
            "provider": {"type": "open_ai", "model": "gpt-realtime", "temperature": 0.7},
            "prompt": "Be brief.",
            "functions": [
                {
                    "name": "get_time",
                    "description": "Current time",
                    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
                }
            ],
            "toolChoice": "auto",
            "outputModalities": ["audio"],
            "maxOutputTokens": 512,
            "managedPrompt": {"id": "pmpt_1", "version": "2", "variables": {"city": "Paris"}},
        },
        "speak": {"provider": {"type": "open_ai", "voice": "marin"}},
        "sessionAudioOutput": {"voice": "cedar", "speed": 1.1},
        "context": {
            "messages": [
                {"type": "History", "role": "user", "content": "Hi"},
                {"type": "History", "role": "assistant", "content": "Hello"},
                {
                    "type": "History",
                    "function_calls": [
                        {
                            "id": "call_0",
                            "name": "get_time",
                            "arguments": "{}",
                            "response": "12:00",
                            "client_side": True,
                        }
                    ],
                },
            ]
        },
        "greeting": "Welcome!",
        "idleTimeoutMs": 10000,
    },
}

TEMPLATES: dict[str, dict[str, Any]] = {
    "Settings": FULL_SETTINGS,
    "UpdatePrompt": {"type": "UpdatePrompt", "prompt": "Answer in French."},
    "UpdateSpeak": {"type": "UpdateSpeak", "speak": {"provider": {"type": "x", "voice": "ash"}}},
    "InjectUserMessage": {"type": "InjectUserMessage", "content": "What time is it?"},
    "InjectAgentMessage": {"type": "InjectAgentMessage", "message": "Please hold."},
    "FunctionCallResponse": {
        "type": "FunctionCallResponse",
        "id": "call_1",
        "name": "get_time",
        "content": '{"time":"12:00"}',
    },
    "KeepAlive": {"type": "KeepAlive"},
}


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every path to a value inside ``value`` (dict keys and list indices), root excluded."""
    out: list[Path] = []
    if isinstance(value, dict):
        for key, child in value.items():
            out.append((*prefix, key))
            out += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out.append((*prefix, index))
            out += paths(child, (*prefix, index))
    return out


SETTINGS_PATHS = [p for p in paths(FULL_SETTINGS) if p != ("type",)]

PLACEHOLDER = "\u0000raw-token\u0000"
_ENCODED_PLACEHOLDER = json.dumps(PLACEHOLDER).encode()

# Values of every JSON type, plus the awkward ones.
WRONG_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    2**64,
    -(2**63) - 1,
    1e308,
    "",
    "   \u2028\u3000",
    "\x00",
    "x" * 70_000,
    [],
    {},
    [1, "a", None, {}],
    {"a": {"b": [None]}},
]
# Tokens spliced into the encoded text: no JSON encoder produces these.
RAW_TOKENS: list[bytes] = [
    b"1e999",
    b"-1e999",
    b"1E400",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"123456789012345678901234567890123456789",
    b"-0",
    b"0.0000000000000000000000000000001e-400",
    b'"\xff\xfe"',  # invalid UTF-8 inside a string
    b'"\xc0\xaf"',  # overlong encoding
    b'"\xed\xa0\x80"',  # a UTF-16 surrogate encoded as UTF-8
    b'"\\ud800"',  # a lone surrogate escape
    b'"\\u0000"',
    b'"\\uZZZZ"',  # a broken escape
    b"tru",
    b"[1,]",
    b"{,}",
    deep_array(200).encode(),
    deep_object(200).encode(),
    deep_array(5000).encode(),
]


def get(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


def mutate(template: dict[str, Any], path: Path, op: str, new: Any = None) -> dict[str, Any]:
    """A copy of ``template`` with ``op`` ("set", "delete" or "extra") applied at ``path``."""
    out = copy.deepcopy(template)
    parent = get(out, path[:-1])
    last = path[-1]
    if op == "set":
        parent[last] = new
    elif op == "delete":
        del parent[last]
    elif op == "extra":
        target = parent[last]
        if isinstance(target, dict):
            target["x_unknown_field"] = new
        elif isinstance(target, list):
            target.append(new)
        else:
            parent[last] = new
    return out


def encode_with_raw(obj: Any, raw: bytes | None = None) -> bytes:
    """Compact JSON of ``obj``; ``raw`` replaces every encoded :data:`PLACEHOLDER`."""
    data = json.dumps(obj, separators=(",", ":")).encode()
    if raw is not None:
        data = data.replace(_ENCODED_PLACEHOLDER, raw)
    return data


# --------------------------------------------------------------------------------------------
# hypothesis strategies

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
TYPE_NAMES = st.sampled_from([*TEMPLATES, "Settings", "settings", "", "Welcome", "Error", "x"])


@st.composite
def near_valid(draw: Any, types: list[str] | None = None) -> bytes:
    """A valid template with one to three changes at random paths, sometimes a raw token."""
    name = draw(st.sampled_from(types or list(TEMPLATES)))
    obj: dict[str, Any] = TEMPLATES[name]
    raw: bytes | None = None
    for _ in range(draw(st.integers(1, 3))):
        candidates = paths(obj)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        op = draw(st.sampled_from(["set", "set", "set", "delete", "extra"]))
        kind = draw(st.sampled_from(["wrong", "wrong", "json", "raw", "type"]))
        if kind == "wrong":
            new: Any = draw(st.sampled_from(WRONG_VALUES))
        elif kind == "json":
            new = draw(JSON_VALUES)
        elif kind == "type":
            new = draw(TYPE_NAMES)
        else:
            new, raw = PLACEHOLDER, draw(st.sampled_from(RAW_TOKENS))
        obj = mutate(obj, path, op, new)
    return encode_with_raw(obj, raw)


@st.composite
def corrupted_bytes(draw: Any) -> bytes:
    """A valid message's bytes cut, with a byte inserted, replaced or deleted, or wrapped."""
    data = encode_with_raw(TEMPLATES[draw(st.sampled_from(list(TEMPLATES)))])
    how = draw(st.sampled_from(["cut", "insert", "replace", "delete", "bom", "trail", "dup"]))
    i = draw(st.integers(0, len(data) - 1))
    byte = bytes([draw(st.integers(0, 255))])
    if how == "cut":
        return data[:i]
    if how == "insert":
        return data[:i] + byte + data[i:]
    if how == "replace":
        return data[:i] + byte + data[i + 1 :]
    if how == "delete":
        return data[:i] + data[i + 1 :]
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "trail":
        return data + draw(st.sampled_from([b"x", b"{}", b" ", b"\x00", b"\n\n"]))
    return data[:-1] + b',"type":"KeepAlive"}'  # a duplicate "type" key


def client_text() -> Any:
    """Every kind of hostile client text message."""
    return st.one_of(
        near_valid(),
        near_valid(),
        near_valid(),
        corrupted_bytes(),
        st.binary(max_size=64),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries({"type": TYPE_NAMES}, optional={"x": JSON_VALUES}).map(
            lambda v: json.dumps(v).encode()
        ),
        st.sampled_from(RAW_TOKENS),
    )
