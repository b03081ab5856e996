"""Reading the end of files that are being appended to, without reading the whole file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# A line longer than this is never parsed (a runaway print, a binary blob): it is counted as corrupt.
MAX_LINE_BYTES = 1 << 20


def split_complete_lines(data: bytes, *, from_middle: bool) -> list[bytes]:
    """The lines of iter_complete_lines, as a list (a bounded tail's)."""
    return list(iter_complete_lines(data, from_middle=from_middle))


def iter_complete_lines(data: bytes, *, from_middle: bool) -> Iterator[bytes]:
    """Lines of a byte window, one at a time; the first one is dropped when the window started mid-line, and a final
    line without its newline is dropped too (the writer may still be on it). One at a time: a report reads files of
    hundreds of MB whole, and a list of every line beside the bytes they come from doubled its memory."""
    pos, end = 0, data.rfind(b"\n")  # past the last newline: a partial line (or nothing)
    if from_middle:
        first = data.find(b"\n")
        pos = end + 1 if first < 0 else first + 1
    while pos <= end:
        nl = data.find(b"\n", pos)
        yield data[pos:nl]
        pos = nl + 1


def read_tail(path: Path, max_bytes: int) -> tuple[bytes, bool]:
    """The last ``max_bytes`` of a file and whether that window starts mid-file."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = max(0, size - max_bytes)
        fh.seek(start)
        return fh.read(size - start), start > 0


def read_tail_lines(path: Path, max_bytes: int) -> list[bytes]:
    """Complete lines within the last ``max_bytes`` of ``path`` ([] when missing)."""
    try:
        data, from_middle = read_tail(path, max_bytes)
    except OSError:
        return []
    return split_complete_lines(data, from_middle=from_middle)
