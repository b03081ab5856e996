"""Follow one local file by byte offset: read only what was appended since the last poll.

Handles the ways a log file changes under a reader:
- growth: read from the saved offset to the end;
- truncation (size < offset): start again from byte 0, and say so (``reset``);
- rotation or re-creation (a different inode at the path): read the new file from 0;
- a rewrite in place (same inode, any size, e.g. a tool that rewrites the whole log, or a new file
  that got the old inode number between two polls): the bytes just before our offset are no
  longer the ones we read (``EDGE_BYTES`` of them are kept and compared whenever size or mtime
  moved): start again from 0;
- deletion: nothing to read; wait for the path to come back;
- not created yet: wait for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nsa_tui.tail.lines import LineSplitter, split_lines

EDGE_BYTES = 64  # compared before each read of a changed file: cheap, and a rewrite rarely keeps them


@dataclass
class TailChunk:
    """What one poll found: complete new lines, and whether earlier lines are void."""

    data: bytes = b""  # complete new lines, each ending in a newline
    reset: bool = False  # the file was truncated/replaced: drop what came from it before

    @property
    def lines(self) -> list[bytes]:
        return split_lines(self.data)

    def __bool__(self) -> bool:
        return bool(self.data) or self.reset


class FileTailer:
    """Incremental reader of one path. ``poll()`` is cheap when nothing changed (one stat)."""

    def __init__(self, path: str | os.PathLike[str], window: int | None = None) -> None:
        self.path = Path(path)
        self.window = window  # first read of a bigger file: only its last `window` bytes
        self.window_start = 0  # where that first read started (0: at the file's start); reset with the file
        self.offset = 0
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the file we follow
        self._split = LineSplitter()
        self.exists = False
        self.mtime: float | None = None
        self._edge = b""  # the last EDGE_BYTES we read, i.e. the file's bytes just before `offset`
        self._sig: tuple[int, int] | None = None  # (size, mtime_ns) at the last poll

    @property
    def ident(self) -> tuple[int, int] | None:
        """(st_dev, st_ino) of the file followed; None before the first poll found it."""
        return self._ident

    def poll(self) -> TailChunk:
        out = TailChunk()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.exists = False
            return out
        came_back = not self.exists and self._ident is not None  # deleted, then created again
        self.exists = True
        ident = (st.st_dev, st.st_ino)
        # A re-created file may get the old inode number back, hence came_back.
        if self._ident is not None and (came_back or ident != self._ident or st.st_size < self.offset):
            # Rotated, re-created or truncated: the old bytes are no longer this file.
            out.reset = True
            self.offset = 0
            self.window_start = 0
            self._edge = b""
            self._split.reset()
        if self._ident is None and self.window is not None and st.st_size > self.window and not out.reset:
            self.offset = self.window_start = st.st_size - self.window
            self._split.start_mid_line()
        self._ident = ident
        self.mtime = st.st_mtime
        sig = (st.st_size, st.st_mtime_ns)
        moved, self._sig = sig != self._sig, sig
        if st.st_size == self.offset and not (moved and self._edge):
            return out
        try:
            with open(self.path, "rb") as f:
                fst = os.fstat(f.fileno())
                if (fst.st_dev, fst.st_ino) != ident:
                    return out  # replaced between stat and open: the next poll sees the new one
                if self._edge and os.pread(f.fileno(), len(self._edge), self.offset - len(self._edge)) != self._edge:
                    out.reset = True  # rewritten in place: what we read is no longer this file
                    self.offset = self.window_start = 0
                    self._edge = b""
                    self._split.reset()
                f.seek(self.offset)
                data = f.read(st.st_size - self.offset)  # up to the size we stat'ed; more next poll
                self.offset += len(data)
                self._edge = (self._edge + data[-EDGE_BYTES:])[-EDGE_BYTES:]
                out.data = self._split.feed_blob(data)
        except FileNotFoundError:
            self.exists = False
        return out

    def moved_to(self, path: Path) -> None:
        """Follow the file at ``path`` from here on: it was renamed with its directory. A poll that found it gone
        meanwhile is forgotten, so the same file (its identity) is read on from its offset, not again from 0."""
        self.path = path
        self.exists = self._ident is not None

    def restart(self) -> None:
        """Forget everything and read the file again from byte 0 on the next poll."""
        self.offset = self.window_start = 0
        self._ident = None
        self._edge = b""
        self._sig = None
        self._split.reset()
