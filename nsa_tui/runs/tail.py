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


class FileFollower:
    """Incremental reader for an append-only file (``tail -F`` style).

    ``read_new()`` returns the complete lines appended since the previous call; a partial
    last line waits for its newline. The first call starts ``initial_bytes`` before the
    end (None: from the start). A file that shrank (truncated, rewritten) is read again
    from the beginning.
    """

    def __init__(self, path: Path, initial_bytes: int | None = None) -> None:
        self.path = Path(path)
        self.initial_bytes = initial_bytes
        self._offset: int | None = None
        self._partial = b""
        self._skip_first = False

    def read_new(self, max_bytes: int = 64 << 20) -> list[bytes]:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 (closed below)
        except OSError:
            return []
        with fh:
            size = fh.seek(0, os.SEEK_END)
            if self._offset is None:
                start = 0 if self.initial_bytes is None else max(0, size - self.initial_bytes)
                self._offset, self._skip_first = start, start > 0
            elif size < self._offset:
                self._offset, self._partial, self._skip_first = 0, b"", False
            if size == self._offset:
                return []
            fh.seek(self._offset)
            data = fh.read(min(size - self._offset, max_bytes))
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE_BYTES:
            # keep a marker so the oversized line is still counted as corrupt once complete
            self._partial = self._partial[: MAX_LINE_BYTES + 1]
        if self._skip_first and lines:
            lines = lines[1:]
            self._skip_first = False
        return lines
