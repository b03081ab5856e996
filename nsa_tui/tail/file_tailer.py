"""Follow one local file by byte offset: read only what was appended since the last poll.

Handles the ways a log file changes under a reader:
- growth: read from the saved offset to the end;
- truncation (size < offset): start again from byte 0, and say so (``reset``);
- rotation or re-creation (a different inode at the path): read the new file from 0;
- deletion: nothing to read; wait for the path to come back;
- not created yet: wait for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nsa_tui.tail.lines import LineSplitter, split_lines


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
        self.offset = 0
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the file we follow
        self._split = LineSplitter()
        self.exists = False
        self.mtime: float | None = None

    @property
    def size_seen(self) -> int:
        return self.offset

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
            self._split.reset()
        if self._ident is None and self.window is not None and st.st_size > self.window and not out.reset:
            self.offset = st.st_size - self.window
            self._split.start_mid_line()
        self._ident = ident
        self.mtime = st.st_mtime
        if st.st_size == self.offset:
            return out
        try:
            with open(self.path, "rb") as f:
                if (os.fstat(f.fileno()).st_ino, os.fstat(f.fileno()).st_dev) != (ident[1], ident[0]):
                    return out  # replaced between stat and open: the next poll sees the new one
                f.seek(self.offset)
                data = f.read(st.st_size - self.offset)  # up to the size we stat'ed; more next poll
                self.offset += len(data)
                out.data = self._split.feed_blob(data)
        except FileNotFoundError:
            self.exists = False
        return out

    def restart(self) -> None:
        """Forget everything and read the file again from byte 0 on the next poll."""
        self.offset = 0
        self._ident = None
        self._split.reset()
