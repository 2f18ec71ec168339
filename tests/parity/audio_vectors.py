"""Test vectors for the audio kernels, shared by tests/unit/test_audio_*.py and tests/parity.

Each vector states the expected result (PROTOCOL.md §9.1, §9.2, §9.4), so the unit tests run them
against the selected implementation and the parity tests against both.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

# --- append framing (§9.1 A1/A2, P-36) ------------------------------------------------------

APPEND_PREFIX = b'{"type":"input_audio_buffer.append","audio":"'
APPEND_SUFFIX = b'"}'

# (pcm, base64 text of the single append)
APPEND_VECTORS: list[tuple[bytes, bytes]] = [
    (b"\x00\x00\xff\xff", b"AAD//w=="),  # P-36
    (b"\x00", b"AA=="),
    (b"\x00\x00", b"AAA="),
    (b"\x00\x00\x00", b"AAAA"),
    (b"\xfb\xff\xbf", b"+/+/"),
    (b"\xff", b"/w=="),
    (b"\xff\xff", b"//8="),
    (b"foobar", b"Zm9vYmFy"),  # RFC 4648 §10
    (b"fooba", b"Zm9vYmE="),
    (bytes(range(256)), base64.b64encode(bytes(range(256)))),
]


def append_event(pcm: bytes) -> bytes:
    return APPEND_PREFIX + base64.b64encode(pcm) + APPEND_SUFFIX


# --- delta scanner (§9.4) -------------------------------------------------------------------

AUDIO_TYPE = "response.output_audio.delta"
RID = "resp_jI83PNJnlhuuCmzLgh1cs"
IID = "item_DZiUSO2Gle7meNfio5VXP"
# The start of the first audio delta of traces/voice-turn-server-vad.jsonl (real API shape).
TRACE_B64 = (
    "ZgNKB0UKLgycDmEQShLnErgThBLDE1cS2hGAEGIP0Q4gDu8Mbgx8DJoLUAtYDBIMwAuGDOQMrAyKDCMNTA1oDLULtgtP"
)
TRACE_PCM = base64.b64decode(TRACE_B64)
TRACE_LINE = (
    '{"type":"response.output_audio.delta","event_id":"event_kJDFWvEVy6L3IGxBSGHxT",'
    f'"response_id":"{RID}","item_id":"{IID}","output_index":0,"content_index":0,'
    f'"delta":"{TRACE_B64}"}}'
).encode()


def delta_frame(pcm: bytes, rid: str = RID, iid: str = IID) -> bytes:
    """A delta frame in the real API's key order, compact."""
    b64 = base64.b64encode(pcm).decode()
    return (
        f'{{"type":"{AUDIO_TYPE}","event_id":"event_x","response_id":"{rid}",'
        f'"item_id":"{iid}","output_index":0,"content_index":0,"delta":"{b64}"}}'
    ).encode()


def oracle_scan(frame: bytes) -> tuple[str, str, bytes] | None:
    """A slow, independent reading of §9.4 with the stdlib json module.

    Whenever the scanner accepts a frame, its answer must equal this one. (The scanner may
    refuse frames this accepts, e.g. escaped ids: those take the control path.)
    """
    try:
        text = frame.decode("ascii")
    except UnicodeDecodeError:
        return None
    last: list[list[tuple[str, Any]]] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        last[:] = [pairs]  # the top-level object is the last one completed
        return dict(pairs)

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    try:
        obj = json.loads(text, object_pairs_hook=hook, parse_constant=no_constants)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or len(obj) != len(last[0]):  # duplicate top-level key
        return None
    rid, iid, delta = obj.get("response_id"), obj.get("item_id"), obj.get("delta")
    if obj.get("type") != AUDIO_TYPE or not all(isinstance(v, str) for v in (rid, iid, delta)):
        return None
    assert isinstance(rid, str) and isinstance(iid, str) and isinstance(delta, str)
    if len(delta) % 4 or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", delta):
        return None
    try:
        pcm = base64.b64decode(delta, validate=True)
    except binascii.Error:
        return None
    if base64.b64encode(pcm).decode() != delta:  # non-canonical padding bits
        return None
    return rid, iid, pcm


def _f(body: str) -> bytes:
    return ("{" + body + "}").encode()


_T = f'"type":"{AUDIO_TYPE}"'
_R = '"response_id":"r1"'
_I = '"item_id":"i1"'
_D = '"delta":"AAD//w=="'
_OK = ("r1", "i1", b"\x00\x00\xff\xff")


def _nest(depth: int) -> str:
    return "[" * depth + "]" * depth


# (name, frame, expected result or None)
SCAN_ACCEPT: list[tuple[str, bytes, tuple[str, str, bytes]]] = [
    ("trace_line", TRACE_LINE, (RID, IID, TRACE_PCM)),
    ("minimal", _f(f"{_T},{_R},{_I},{_D}"), _OK),
    ("delta_first", _f(f"{_D},{_I},{_R},{_T}"), _OK),
    ("type_last", _f(f"{_R},{_D},{_I},{_T}"), _OK),
    (
        "whitespace",
        (
            f' \r\n\t{{ {_T.replace(":", " : ")} ,\n\t{_R} ,{_I}\r\n, "delta" :\t"AAD//w==" }}\n '
        ).encode(),
        _OK,
    ),
    ("empty_delta", _f(f'{_T},{_R},{_I},"delta":""'), ("r1", "i1", b"")),
    ("pad_one", _f(f'{_T},{_R},{_I},"delta":"AAA="'), ("r1", "i1", b"\x00\x00")),
    ("pad_two", _f(f'{_T},{_R},{_I},"delta":"AA=="'), ("r1", "i1", b"\x00")),
    ("no_pad", _f(f'{_T},{_R},{_I},"delta":"+/+/"'), ("r1", "i1", b"\xfb\xff\xbf")),
    ("empty_ids", _f(f'{_T},"response_id":"","item_id":"",{_D}'), ("", "", _OK[2])),
    (
        "ids_printable",
        _f(f'{_T},"response_id":"a b/{{}}[]:,","item_id":"~!",{_D}'),
        ("a b/{}[]:,", "~!", _OK[2]),
    ),
    (
        "other_scalars",
        _f(
            f'{_T},"a":0,"b":-1.5e+3,"c":1E9,"d":-0,"e":0.25,"f":null,"g":true,"h":false,'
            f"{_R},{_I},{_D}"
        ),
        _OK,
    ),
    (
        "escaped_strings_elsewhere",
        _f(f'"event_id":"a\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\\uFFFF",{_T},{_R},{_I},{_D}'),
        _OK,
    ),
    (
        "delta_inside_other_string",
        _f(f'"note":"\\"delta\\":\\"AAAA\\",\\"type\\":\\"x\\"",{_T},{_R},{_I},{_D}'),
        _OK,
    ),
    (
        "delta_inside_nested_object",
        _f(
            f'"meta":{{"delta":"!!","type":"x","response_id":1,"meta":{{"delta":null}}}},'
            f"{_T},{_R},{_I},{_D}"
        ),
        _OK,
    ),
    (
        "nested_containers",
        _f(
            f'"a":[],"b":{{}},"c":[1,"x",{{"k":[true,false,null]}},[[]]],"d":{{"":{{"":[]}}}},'
            f"{_T},{_R},{_I},{_D}"
        ),
        _OK,
    ),
    ("nested_whitespace", _f(f'"a" : [ 1 , {{ "b" : [ ] }} ] ,{_T},{_R},{_I},{_D}'), _OK),
    ("depth_32", _f(f'"a":{_nest(32)},{_T},{_R},{_I},{_D}'), _OK),
    ("obfuscation_field", _f(f'{_T},{_R},{_I},{_D},"obfuscation":"Xp0"'), _OK),
    ("keys_64", _f(",".join([_T, _R, _I, _D] + [f'"k{i}":{i}' for i in range(60)])), _OK),
    ("empty_key", _f(f'"":1,{_T},{_R},{_I},{_D}'), _OK),
]

SCAN_REJECT: list[tuple[str, bytes]] = [
    # not an audio delta
    ("empty", b""),
    ("whitespace_only", b" \n"),
    ("empty_object", b"{}"),
    ("array", b'["response.output_audio.delta"]'),
    ("transcript_delta", _f(f'"type":"response.output_audio_transcript.delta",{_R},{_I},{_D}')),
    ("audio_done", _f(f'"type":"response.output_audio.done",{_R},{_I}')),
    ("type_prefix", _f(f'"type":"response.output_audio.delt",{_R},{_I},{_D}')),
    ("type_suffix", _f(f'"type":"response.output_audio.deltas",{_R},{_I},{_D}')),
    ("type_case", _f(f'"type":"Response.output_audio.delta",{_R},{_I},{_D}')),
    ("type_escaped", _f(f'"type":"response.output_audio\\u002edelta",{_R},{_I},{_D}')),
    ("type_not_string", _f(f'"type":1,{_R},{_I},{_D}')),
    ("type_missing", _f(f"{_R},{_I},{_D}")),
    ("type_nested_only", _f(f'"x":{{{_T}}},{_R},{_I},{_D}')),
    (
        "speech_started",
        b'{"type":"input_audio_buffer.speech_started","event_id":"event_Ls5ivyPILfLKKxpUyCWgc",'
        b'"audio_start_ms":840,"item_id":"item_OF9l5wD68Bda1uzRJXIVN"}',
    ),
    (
        "function_call_arguments_delta",
        b'{"type":"response.function_call_arguments.delta","event_id":"event_X",'
        b'"response_id":"resp_f","item_id":"item_z","output_index":0,"call_id":"call_u",'
        b'"delta":"{\\"city\\":"}',
    ),
    # ids
    ("response_id_missing", _f(f"{_T},{_I},{_D}")),
    ("item_id_missing", _f(f"{_T},{_R},{_D}")),
    ("response_id_null", _f(f'{_T},"response_id":null,{_I},{_D}')),
    ("item_id_number", _f(f'{_T},{_R},"item_id":7,{_D}')),
    ("response_id_escape_u", _f(f'{_T},"response_id":"resp_\\u0041",{_I},{_D}')),
    ("response_id_escape_quote", _f(f'{_T},"response_id":"a\\"b",{_I},{_D}')),
    ("item_id_escape_slash", _f(f'{_T},{_R},"item_id":"a\\/b",{_D}')),
    ("item_id_object", _f(f'{_T},{_R},"item_id":{{"id":"i1"}},{_D}')),
    # delta / base64
    ("delta_missing", _f(f"{_T},{_R},{_I}")),
    ("delta_null", _f(f'{_T},{_R},{_I},"delta":null')),
    ("delta_number", _f(f'{_T},{_R},{_I},"delta":0')),
    ("delta_array", _f(f'{_T},{_R},{_I},"delta":["AAAA"]')),
    ("delta_escaped_slash", _f(f'{_T},{_R},{_I},"delta":"AAD\\/\\/w=="')),
    ("delta_escape_u", _f(f'{_T},{_R},{_I},"delta":"\\u0041AAA"')),
    ("b64_bad_char", _f(f'{_T},{_R},{_I},"delta":"AA*A"')),
    ("b64_urlsafe", _f(f'{_T},{_R},{_I},"delta":"-_-_"')),
    ("b64_space", _f(f'{_T},{_R},{_I},"delta":"AAAA AAAA"')),
    ("b64_leading_space", _f(f'{_T},{_R},{_I},"delta":" AAAA"')),
    ("b64_trailing_space", _f(f'{_T},{_R},{_I},"delta":"AAAA "')),
    ("b64_raw_newline", _f(f'{_T},{_R},{_I},"delta":"AAAA\nAAAA"')),
    ("b64_escaped_newline", _f(f'{_T},{_R},{_I},"delta":"AAAA\\nAAAA"')),
    ("b64_len_1", _f(f'{_T},{_R},{_I},"delta":"A"')),
    ("b64_len_2", _f(f'{_T},{_R},{_I},"delta":"AA"')),
    ("b64_len_3", _f(f'{_T},{_R},{_I},"delta":"AAA"')),
    ("b64_len_5", _f(f'{_T},{_R},{_I},"delta":"AAAAA"')),
    ("b64_missing_pad", _f(f'{_T},{_R},{_I},"delta":"AAD//w"')),
    ("b64_short_pad", _f(f'{_T},{_R},{_I},"delta":"AA="')),
    ("b64_extra_pad", _f(f'{_T},{_R},{_I},"delta":"AAAA="')),
    ("b64_triple_pad", _f(f'{_T},{_R},{_I},"delta":"A==="')),
    ("b64_quad_pad", _f(f'{_T},{_R},{_I},"delta":"===="')),
    ("b64_pad_then_pad", _f(f'{_T},{_R},{_I},"delta":"AAAA===="')),
    ("b64_leading_pad", _f(f'{_T},{_R},{_I},"delta":"=AAA"')),
    ("b64_middle_pad", _f(f'{_T},{_R},{_I},"delta":"AA==AAAA"')),
    ("b64_pad_not_last", _f(f'{_T},{_R},{_I},"delta":"AA=A"')),
    ("b64_noncanonical_two", _f(f'{_T},{_R},{_I},"delta":"AB=="')),
    ("b64_noncanonical_one", _f(f'{_T},{_R},{_I},"delta":"AAB="')),
    ("b64_non_ascii", b"{" + f"{_T},{_R},{_I},".encode() + b'"delta":"AA\xc3\xa9A"}'),
    # duplicate keys (anywhere at top level)
    ("dup_type", _f(f"{_T},{_T},{_R},{_I},{_D}")),
    ("dup_delta", _f(f'{_T},{_R},{_I},{_D},"delta":"AAAA"')),
    ("dup_delta_same", _f(f"{_T},{_R},{_I},{_D},{_D}")),
    ("dup_response_id", _f(f'{_T},{_R},{_I},{_D},"response_id":"r2"')),
    ("dup_item_id", _f(f"{_T},{_I},{_R},{_I},{_D}")),
    ("dup_other", _f(f'"x":1,{_T},{_R},{_I},{_D},"x":1')),
    ("dup_other_container", _f(f'"x":[],{_T},{_R},{_I},"x":{{}},{_D}')),
    # keys
    ("key_escaped_type", _f(f'"typ\\u0065":"{AUDIO_TYPE}",{_R},{_I},{_D}')),
    ("key_escaped_delta", _f(f'{_T},{_R},{_I},"del\\u0074a":"AAD//w=="')),
    ("key_escaped_other", _f(f'"a\\nb":1,{_T},{_R},{_I},{_D}')),
    ("key_unquoted", _f(f"type:1,{_T},{_R},{_I},{_D}")),
    ("keys_65", _f(",".join([_T, _R, _I, _D] + [f'"k{i}":{i}' for i in range(61)]))),
    # non-ASCII and control characters
    ("non_ascii_event_id", b"{" + f"{_T},{_R},{_I},{_D},".encode() + b'"event_id":"\xc3\xa9"}'),
    ("non_ascii_nested", b"{" + f"{_T},{_R},{_I},{_D},".encode() + b'"x":["\xe2\x82\xac"]}'),
    ("non_ascii_key", b"{" + f"{_T},{_R},{_I},{_D},".encode() + b'"\xc3\xa9":1}'),
    ("byte_80_trailing", _f(f"{_T},{_R},{_I},{_D}") + b"\x80"),
    ("byte_ff_in_id", b"{" + f"{_T},{_I},{_D},".encode() + b'"response_id":"r\xff"}'),
    ("control_in_event_id", _f(f'{_T},{_R},{_I},{_D},"event_id":"a\tb"')),
    ("nul_in_event_id", _f(f'{_T},{_R},{_I},{_D},"event_id":"a\x00b"')),
    ("del_in_event_id", _f(f'{_T},{_R},{_I},{_D},"event_id":"a\x7fb"')),
    ("control_in_id", _f(f'{_T},"response_id":"r\x01",{_I},{_D}')),
    ("del_in_id", _f(f'{_T},{_R},"item_id":"i\x7f",{_D}')),
    # structure
    ("trailing_garbage", _f(f"{_T},{_R},{_I},{_D}") + b"x"),
    ("trailing_brace", _f(f"{_T},{_R},{_I},{_D}") + b"}"),
    ("trailing_comma_after", _f(f"{_T},{_R},{_I},{_D}") + b","),
    ("two_objects", _f(f"{_T},{_R},{_I},{_D}") + b" {}"),
    ("leading_garbage", b"x" + _f(f"{_T},{_R},{_I},{_D}")),
    ("leading_bom", b"\xef\xbb\xbf" + _f(f"{_T},{_R},{_I},{_D}")),
    ("trailing_nul", _f(f"{_T},{_R},{_I},{_D}") + b"\x00"),
    ("trailing_comma", _f(f"{_T},{_R},{_I},{_D},")),
    ("leading_comma", _f(f",{_T},{_R},{_I},{_D}")),
    ("double_comma", _f(f"{_T},,{_R},{_I},{_D}")),
    ("missing_comma", _f(f"{_T} {_R},{_I},{_D}")),
    ("missing_colon", _f(f'{_T},"response_id" "r1",{_I},{_D}')),
    ("double_colon", _f(f'{_T},"response_id"::"r1",{_I},{_D}')),
    ("single_quotes", _f(f"{_T},'response_id':'r1',{_I},{_D}")),
    ("closing_bracket", ("{" + f"{_T},{_R},{_I},{_D}" + "]").encode()),
    ("unclosed", ("{" + f"{_T},{_R},{_I},{_D}").encode()),
    ("vertical_tab_ws", _f(f"{_T},\x0b{_R},{_I},{_D}")),
    ("form_feed_ws", _f(f"{_T},\x0c{_R},{_I},{_D}")),
    ("nbsp_ws", b"{" + f"{_T},".encode() + b"\xc2\xa0" + f"{_R},{_I},{_D}}}".encode()),
    # invalid values elsewhere
    ("bad_number_leading_zero", _f(f'"x":01,{_T},{_R},{_I},{_D}')),
    ("bad_number_dot", _f(f'"x":1.,{_T},{_R},{_I},{_D}')),
    ("bad_number_dot_first", _f(f'"x":.5,{_T},{_R},{_I},{_D}')),
    ("bad_number_exp", _f(f'"x":1e,{_T},{_R},{_I},{_D}')),
    ("bad_number_plus", _f(f'"x":+1,{_T},{_R},{_I},{_D}')),
    ("bad_number_minus", _f(f'"x":-,{_T},{_R},{_I},{_D}')),
    ("bad_number_hex", _f(f'"x":0x1,{_T},{_R},{_I},{_D}')),
    ("nan", _f(f'"x":NaN,{_T},{_R},{_I},{_D}')),
    ("infinity", _f(f'"x":-Infinity,{_T},{_R},{_I},{_D}')),
    ("bad_literal", _f(f'"x":tru,{_T},{_R},{_I},{_D}')),
    ("bad_literal_case", _f(f'"x":True,{_T},{_R},{_I},{_D}')),
    ("literal_suffix", _f(f'"x":nulls,{_T},{_R},{_I},{_D}')),
    ("bad_escape", _f(f'"x":"a\\x",{_T},{_R},{_I},{_D}')),
    ("bad_escape_u", _f(f'"x":"\\u12g4",{_T},{_R},{_I},{_D}')),
    ("short_escape_u", _f(f'"x":"\\u12",{_T},{_R},{_I},{_D}')),
    ("lone_surrogate_high", _f(f'"x":"\\ud800",{_T},{_R},{_I},{_D}')),
    ("lone_surrogate_low", _f(f'"x":"\\uDFFF",{_T},{_R},{_I},{_D}')),
    # valid JSON, but the scanner refuses all surrogate escapes (the control path decides)
    ("surrogate_pair", _f(f'"x":"\\ud83d\\ude00",{_T},{_R},{_I},{_D}')),
    ("array_trailing_comma", _f(f'"x":[1,],{_T},{_R},{_I},{_D}')),
    ("array_missing_comma", _f(f'"x":[1 2],{_T},{_R},{_I},{_D}')),
    ("object_missing_value", _f(f'"x":{{"a"}},{_T},{_R},{_I},{_D}')),
    ("object_trailing_comma", _f(f'"x":{{"a":1,}},{_T},{_R},{_I},{_D}')),
    ("object_unquoted_key", _f(f'"x":{{a:1}},{_T},{_R},{_I},{_D}')),
    ("mismatched_brackets", _f(f'"x":[1}},{_T},{_R},{_I},{_D}')),
    ("missing_value", _f(f'"x":,{_T},{_R},{_I},{_D}')),
    ("depth_33", _f(f'"a":{_nest(33)},{_T},{_R},{_I},{_D}')),
    ("unclosed_nested", _f(f'"a":[[[,{_T},{_R},{_I},{_D}')),
]

# --- resampler (§9.2) -----------------------------------------------------------------------

CLIENT_RATES = (8000, 16000, 22050, 32000, 44100, 48000)
PAIRS: list[tuple[int, int]] = [(r, 24000) for r in CLIENT_RATES] + [
    (24000, r) for r in CLIENT_RATES
]
# P-37: bytes of one 20 ms client frame
FRAME_20MS = {8000: 320, 16000: 640, 22050: 882, 24000: 960, 32000: 1280, 44100: 1764, 48000: 1920}
UNSUPPORTED_PAIRS: list[tuple[int, int]] = [
    (16000, 16000),
    (8000, 16000),
    (24000, 11025),
    (11025, 24000),
    (24000, 96000),
    (0, 24000),
    (24000, -8000),
    (44100, 48000),
]
