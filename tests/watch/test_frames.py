"""The remote stream's framing survives arbitrary splits and binary garbage in payloads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsa_tui.tail.frames import FrameError, FrameParser


def _encode(frames: list[tuple[str, bytes]]) -> bytes:
    out = b""
    off = 0
    for name, payload in frames:
        kind = "R" if off == 0 else "D"
        out += f"{kind} 42 {off} {len(payload)} {min(len(payload), 64)} 3141 {name}\n".encode() + payload
        out += b"F run.json\n"
        out += f"W 7 {len(payload)} run.json\n".encode() + payload
        out += b"E 1\n"
        off += len(payload)
    return out


@settings(max_examples=80, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=200), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 5000), max_size=20),
)
def test_any_split_and_any_bytes_parse_the_same(payloads, cuts):
    stream = _encode([("heartbeat_rank0.jsonl", p) for p in payloads])
    parser = FrameParser()
    frames = []
    prev = 0
    for c in sorted({min(c, len(stream)) for c in cuts} | {len(stream)}):
        frames += parser.feed(stream[prev:c])
        prev = c
    data = [f.data for f in frames if f.kind in "DR"]
    whole = [f.data for f in frames if f.kind == "W"]
    assert data == payloads and whole == payloads
    assert [f.kind for f in frames].count("E") == len(payloads)
    assert all(f.name == "heartbeat_rank0.jsonl" for f in frames if f.kind in "DR")
    assert [f.edge for f in frames if f.kind in "DR"] == [(min(len(p), 64), 3141) for p in payloads]


def test_payload_with_fake_headers_inside_is_not_misread():
    evil = b"E 99\nD 1 2 3 4 5 x\n\x00\xff"
    frames = FrameParser().feed(f"D 5 0 {len(evil)} 0 0 a.log\n".encode() + evil + b"E 1\n")
    assert [f.kind for f in frames] == ["D", "E"]
    assert frames[0].data == evil and frames[1].round == 1


@pytest.mark.parametrize(
    "bad", [b"hello\n", b"D 1 2 -3 0 0 x\n", b"D x y z 0 0 w\n", b"D 1 2 3 x\n", b"R 1 2 3 4 -5 x\n", b"E\n"]
)
def test_garbled_header_is_an_error(bad):
    with pytest.raises(FrameError):
        FrameParser().feed(bad)


def test_mtime_and_round_clock_frames():
    frames = FrameParser().feed(b"M 42 1790000000 train log.log\nE 3 1790000005\nE 4\n")
    assert [f.kind for f in frames] == ["M", "E", "E"]
    m = frames[0]
    assert (m.inode, m.mtime, m.name) == (42, 1790000000, "train log.log")
    assert (frames[1].round, frames[1].now) == (3, 1790000005) and (frames[2].round, frames[2].now) == (4, 0)
    for bad in (b"M 42 x a\n", b"M 42 1\n", b"E 3 -5\n"):
        with pytest.raises(FrameError):
            FrameParser().feed(bad)
