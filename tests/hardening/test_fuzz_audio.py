"""Fuzzing the audio kernels where they meet the control path (PROTOCOL.md §9.1, §9.2, §9.4).

tests/parity already proves the compiled kernels and their pure-Python twin byte-identical on
small frames and short streams. These targets add the properties that join the two paths:

- *never mis-decode*: whenever the delta scanner (the relay's fast path) accepts a frame, the
  Session's own decoder (``messages.decode_upstream_event``, msgspec) reads the same response id,
  item id and audio bytes from it — so the first delta of an item (control path) and the rest
  (fast path) can never disagree — and the compiled scanner and the twin give the same answer,
  on realistic frames of up to 64 KiB with any single-byte corruption;
- the whole input path (resample → append framing → base64 → JSON → decode) and the whole
  output path (scan → resample) give the same bytes for any split of the stream, compiled and
  twin alike (the resampler and append framing targets of tests/parity, end to end).

The foundation's parity targets stay in the fuzz list (README "Hardening").
"""

from __future__ import annotations

import base64
import json
import os
from types import ModuleType
from typing import Any

import pytest
from hardening_kit import count_example, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from fastproxy import messages
from fastproxy.audio import _audio_py

NO_EXT = os.environ.get("FASTPROXY_NO_EXTENSIONS") == "1"
AUDIO_TYPE = "response.output_audio.delta"
RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)


def _impls() -> list[ModuleType]:
    if NO_EXT:
        return [_audio_py]
    from fastproxy.audio import _audio_c  # a missing build is a failure here, not a skip

    return [_audio_c, _audio_py]


IMPLS = _impls()
BOTH = " + ".join("compiled" if m.IMPLEMENTATION == "c" else "twin" for m in IMPLS)


def _scan(frame: bytes) -> Any:
    answers = [impl.scan_delta(frame) for impl in IMPLS]
    assert all(a == answers[0] for a in answers), f"compiled and twin disagree on {frame[:200]!r}"
    return answers[0]


@st.composite
def delta_frames(draw: Any) -> bytes:
    """A realistic GA delta (fields in any order, extras, odd ids, up to 64 KiB of audio), then
    maybe one byte changed, inserted or removed, or the frame cut."""
    pcm = draw(st.binary(max_size=draw(st.sampled_from([64, 4096, 65536]))))
    fields: dict[str, Any] = {
        "type": draw(st.sampled_from([AUDIO_TYPE] * 5 + ["response.output_audio.done", ""])),
        "event_id": "event_" + str(draw(st.integers(0, 999))),
        "response_id": draw(st.sampled_from(["resp_1"] * 6 + ["resp_é", "r\\1", "", "r_" * 20])),
        "item_id": draw(st.sampled_from(["item_1"] * 6 + ["item/1", "\u2028", "x"])),
        "output_index": draw(st.integers(-1, 3)),
        "content_index": 0,
        "delta": base64.b64encode(pcm).decode(),
    }
    if draw(st.booleans()):
        fields["obfuscation"] = draw(st.text(max_size=8))
    keys = draw(st.permutations(list(fields)))
    keys = [k for k in keys if draw(st.integers(0, 40))]  # sometimes a field is missing
    obj = {k: fields[k] for k in keys}
    frame = json.dumps(obj, ensure_ascii=draw(st.booleans()), separators=(",", ":")).encode()
    how = draw(st.sampled_from(["none"] * 5 + ["replace", "insert", "delete", "cut", "dup"]))
    if how != "none" and frame:
        i = draw(st.integers(0, len(frame) - 1))
        b = bytes([draw(st.integers(0, 255))])
        frame = {
            "replace": frame[:i] + b + frame[i + 1 :],
            "insert": frame[:i] + b + frame[i:],
            "delete": frame[:i] + frame[i + 1 :],
            "cut": frame[:i],
            "dup": frame[:-1] + b',"delta":"AAAA"}',
        }[how]
    return frame


def _control_read(frame: bytes) -> tuple[str, str, bytes] | None:
    """What the Session's decoder reads from ``frame`` (None unless a complete delta)."""
    try:
        event = messages.decode_upstream_event(frame)
    except (
        messages.InvalidUpstreamJson,
        messages.MalformedUpstreamEvent,
        messages.UnmappedUpstreamEvent,
    ):
        return None
    if not isinstance(event, messages.AudioDelta):
        return None
    rid, iid = event.response_id, event.item_id
    if not isinstance(rid, str) or not isinstance(iid, str):
        return None
    return rid, iid, bytes(event.delta)


@fuzz_settings(400)
@given(frame=delta_frames())
def test_fuzz_scanner_never_misdecodes(frame: bytes) -> None:
    count_example(f"delta scanner vs control decoder ({BOTH})")
    fast = _scan(frame)
    if fast is not None:
        assert _control_read(frame) == tuple(fast), frame[:300]


@fuzz_settings(200)
@given(data=st.binary(min_size=1, max_size=2048), prefix=st.sampled_from([b"", b"{", b'{"type":"']))
def test_fuzz_scanner_arbitrary_bytes(data: bytes, prefix: bytes) -> None:
    count_example(f"delta scanner on arbitrary bytes ({BOTH})")
    fast = _scan(prefix + data)
    if fast is not None:
        assert _control_read(prefix + data) == tuple(fast)


@fuzz_settings(60, long_share=0.1)
@given(
    pieces=st.lists(st.binary(min_size=1, max_size=256), min_size=1, max_size=4),
    size=st.sampled_from([1 << 20, 3 << 20]),
    corrupt=st.integers(0, (3 << 20) - 1),
)
def test_fuzz_scanner_large_frames(pieces: list[bytes], size: int, corrupt: int) -> None:
    """Megabyte deltas, intact and with one byte flipped anywhere (the grammar is linear-time)."""
    count_example(f"delta scanner on 1-3 MiB frames ({BOTH})")
    pcm = (b"".join(pieces) * (size // sum(map(len, pieces)) + 1))[:size]
    frame = json.dumps(
        {
            "type": AUDIO_TYPE,
            "response_id": "resp_1",
            "item_id": "item_1",
            "delta": base64.b64encode(pcm).decode(),
        },
        separators=(",", ":"),
    ).encode()
    assert _scan(frame) == ("resp_1", "item_1", pcm)
    i = corrupt % len(frame)
    flipped = frame[:i] + bytes([frame[i] ^ 0x40]) + frame[i + 1 :]
    fast = _scan(flipped)
    if fast is not None:
        assert _control_read(flipped) == tuple(fast)


def _splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[i:j] for i, j in zip([0, *points], [*points, len(data)], strict=True)]


@fuzz_settings(150)
@given(
    rate=st.sampled_from(RATES),
    data=st.binary(max_size=6000),
    cuts=st.lists(st.integers(0, 6000), max_size=30),
    max_bytes=st.integers(1, 3000),
)
def test_fuzz_input_path_end_to_end(
    rate: int, data: bytes, cuts: list[int], max_bytes: int
) -> None:
    """§9.1/§9.2: client audio in any split → resampler → appends → JSON → decoded bytes equal
    the one-shot conversion; compiled and twin produce identical events."""
    count_example(f"input path: split -> resample -> append framing ({BOTH})")
    outputs = []
    for impl in IMPLS:
        resampler = impl.Resampler(rate, 24000)
        events = [
            e
            for chunk in _splits(data, cuts)
            for e in impl.encode_appends(resampler.process(chunk), max_bytes=max_bytes)
        ]
        decoded = b"".join(base64.b64decode(json.loads(e)["audio"], validate=True) for e in events)
        assert decoded == impl.Resampler(rate, 24000).process(data)
        assert all(len(e) <= 47 + 4 * ((max_bytes + 2) // 3) for e in events)
        outputs.append(events)
    assert all(o == outputs[0] for o in outputs)


@fuzz_settings(150)
@given(
    rate=st.sampled_from(RATES),
    deltas=st.lists(st.binary(max_size=1500), min_size=1, max_size=12),
)
def test_fuzz_output_path_end_to_end(rate: int, deltas: list[bytes]) -> None:
    """§9.4/§9.2: deltas → scanner → output resampler; the client bytes are the one-shot
    conversion of the concatenated audio, whatever the delta sizes (odd ones included)."""
    count_example(f"output path: deltas -> scan -> resample ({BOTH})")
    outputs = []
    for impl in IMPLS:
        resampler = impl.Resampler(24000, rate)
        out = []
        for k, pcm in enumerate(deltas):
            frame = json.dumps(
                {
                    "type": AUDIO_TYPE,
                    "response_id": "resp_1",
                    "item_id": f"item_{k % 2}",
                    "delta": base64.b64encode(pcm).decode(),
                },
                separators=(",", ":"),
            ).encode()
            scanned = impl.scan_delta(frame)
            assert scanned is not None and scanned[2] == pcm
            out.append(resampler.process(scanned[2]))
        assert b"".join(out) == impl.Resampler(24000, rate).process(b"".join(deltas))
        outputs.append(out)
    assert all(o == outputs[0] for o in outputs)


@pytest.mark.skipif(NO_EXT, reason="the compiled side is not under test")
def test_both_implementations_are_fuzzed() -> None:
    assert {m.IMPLEMENTATION for m in IMPLS} == {"c", "py"}
