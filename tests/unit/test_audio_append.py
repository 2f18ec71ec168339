"""Append framing (PROTOCOL.md §9.1 A1/A2, P-36, P-42) on the selected implementation."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import pytest

from fastproxy import audio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parity"))
from audio_vectors import APPEND_VECTORS, append_event


def _decode(event: bytes) -> bytes:
    msg = json.loads(event)
    assert list(msg) == ["type", "audio"]
    assert msg["type"] == "input_audio_buffer.append"
    return base64.b64decode(msg["audio"], validate=True)


def test_constants() -> None:
    assert audio.MAX_APPEND_BYTES == 11534336
    assert audio.HEADROOM == 14


def test_p36_passthrough_append() -> None:
    assert audio.encode_appends(b"\x00\x00\xff\xff") == [
        b'{"type":"input_audio_buffer.append","audio":"AAD//w=="}'
    ]


@pytest.mark.parametrize(("pcm", "b64"), APPEND_VECTORS)
def test_vectors(pcm: bytes, b64: bytes) -> None:
    expected = b'{"type":"input_audio_buffer.append","audio":"' + b64 + b'"}'
    assert audio.encode_appends(pcm) == [expected]
    assert audio.AppendFramer().frame(pcm) == expected
    assert expected == append_event(pcm)


def test_empty_input_gives_no_append() -> None:
    assert audio.encode_appends(b"") == []
    assert audio.encode_appends(bytearray()) == []
    assert audio.AppendFramer().frame(b"") == b'{"type":"input_audio_buffer.append","audio":""}'


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_buffer_types(kind: type) -> None:
    pcm = os.urandom(999)
    assert audio.encode_appends(kind(pcm)) == [append_event(pcm)]
    assert audio.AppendFramer().frame(kind(pcm)) == append_event(pcm)


def test_memoryview_slice_and_cast() -> None:
    pcm = os.urandom(1000)
    assert audio.encode_appends(memoryview(pcm)[3:700]) == [append_event(pcm[3:700])]
    wide = memoryview(pcm).cast("h")
    assert audio.encode_appends(wide) == [append_event(pcm)]


@pytest.mark.parametrize("max_bytes", [1, 2, 3, 4, 7, 100, 4096])
def test_split_small_max_bytes(max_bytes: int) -> None:
    pcm = os.urandom(1000)
    events = audio.encode_appends(pcm, max_bytes=max_bytes)
    pieces = [_decode(e) for e in events]
    assert b"".join(pieces) == pcm
    assert all(len(p) == max_bytes for p in pieces[:-1])
    assert 0 < len(pieces[-1]) <= max_bytes
    assert len(events) == -(-len(pcm) // max_bytes)
    assert events == [append_event(pcm[i : i + max_bytes]) for i in range(0, 1000, max_bytes)]


def test_exact_multiple_has_no_empty_tail() -> None:
    events = audio.encode_appends(bytes(12), max_bytes=4)
    assert [len(_decode(e)) for e in events] == [4, 4, 4]


@pytest.mark.parametrize("bad", [0, -1])
def test_max_bytes_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError):
        audio.encode_appends(b"ab", max_bytes=bad)


def test_p42_sixteen_mib_is_split_in_two() -> None:
    pcm = os.urandom(1 << 20) * 16
    events = audio.encode_appends(pcm)
    assert len(events) == 2
    first, second = (_decode(e) for e in events)
    assert len(first) == 11534336 and len(second) == 5242880
    assert first + second == pcm
    # A4: the whole event stays under the upstream's 15 MiB
    assert len(events[0]) == 15379116 + 47 < 15 * 1024 * 1024


def test_framer_reuse_and_headroom() -> None:
    framer = audio.AppendFramer()
    for n in (0, 5, 960, 100_000, 3, 2_000_000, 960):
        pcm = os.urandom(n)
        assert framer.frame(pcm) == append_event(pcm)
        assert framer.headroom >= audio.HEADROOM


def test_not_a_buffer() -> None:
    with pytest.raises(TypeError):
        audio.encode_appends("text")  # type: ignore[arg-type]
