"""Audio-delta scanner (PROTOCOL.md §9.4 O1) on the selected implementation."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import pytest

from fastproxy import audio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parity"))
from audio_vectors import (
    IID,
    RID,
    SCAN_ACCEPT,
    SCAN_REJECT,
    TRACE_LINE,
    delta_frame,
    oracle_scan,
)


@pytest.mark.parametrize(
    ("frame", "expected"), [(f, e) for _, f, e in SCAN_ACCEPT], ids=[n for n, _, _ in SCAN_ACCEPT]
)
def test_accept(frame: bytes, expected: tuple[str, str, bytes]) -> None:
    assert audio.scan_delta(frame) == expected
    assert audio.scan_delta(memoryview(frame)) == expected
    assert audio.scan_delta(bytearray(frame)) == expected
    assert oracle_scan(frame) == expected


@pytest.mark.parametrize("frame", [f for _, f in SCAN_REJECT], ids=[n for n, _ in SCAN_REJECT])
def test_reject(frame: bytes) -> None:
    assert audio.scan_delta(frame) is None


def test_result_types() -> None:
    rid, iid, pcm = audio.scan_delta(TRACE_LINE)  # type: ignore[misc]
    assert type(rid) is str and type(iid) is str and type(pcm) is bytes


@pytest.mark.parametrize("n", [0, 1, 2, 3, 640, 960, 3200, 4800, 1 << 20])
def test_real_sizes(n: int) -> None:
    pcm = os.urandom(n)
    assert audio.scan_delta(delta_frame(pcm)) == (RID, IID, pcm)


def test_every_trace_shape_line() -> None:
    """The real API's delta shape (keys type,event_id,response_id,item_id,output_index,
    content_index,delta), 40 ms of audio, compact and pretty-printed."""
    pcm = os.urandom(1920)
    msg = json.loads(delta_frame(pcm))
    for text in (
        json.dumps(msg, separators=(",", ":")),
        json.dumps(msg),
        json.dumps(msg, indent=2),
    ):
        assert audio.scan_delta(text.encode()) == (RID, IID, pcm)


@pytest.mark.parametrize(
    ("name", "frame"), [("trace", TRACE_LINE)] + [(n, f) for n, f, _ in SCAN_ACCEPT[1:12]]
)
def test_truncated_at_every_cut_point(name: str, frame: bytes) -> None:
    body = frame.rstrip()  # cutting trailing whitespace only would still be a whole frame
    for cut in range(len(body)):
        assert audio.scan_delta(body[:cut]) is None, (name, cut)


def test_single_byte_edits_are_never_wrong() -> None:
    """Every one-byte deletion/substitution of a small frame gives None or the oracle's answer."""
    frame = delta_frame(bytes(range(0, 40, 3)), rid="r_1", iid="i_2")
    for i in range(len(frame)):
        variants = [frame[:i] + frame[i + 1 :]]
        variants += [frame[:i] + bytes([b]) + frame[i + 1 :] for b in b'"\\{}[],: 0A=/\x00\x80']
        for v in variants:
            got = audio.scan_delta(v)
            assert got is None or got == oracle_scan(v), v


def test_delta_decodes_like_base64() -> None:
    for n in range(0, 50):
        pcm = os.urandom(n)
        frame = delta_frame(pcm)
        assert base64.b64encode(pcm) in frame
        assert audio.scan_delta(frame) == (RID, IID, pcm) == oracle_scan(frame)


def test_scanner_object_reuse() -> None:
    sc = audio.DeltaScanner()
    big = os.urandom(300_000)
    for pcm in (b"ab", big, b"", os.urandom(961)):
        assert sc.scan_frame(delta_frame(pcm)) == (RID, IID, pcm)
        assert sc.headroom >= audio.HEADROOM
    assert sc.scan_frame(b"{}") is None
