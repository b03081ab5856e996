"""Turn appended byte chunks into complete lines; a partial last line waits."""

from __future__ import annotations


class LineSplitter:
    """Buffers bytes and yields only newline-terminated lines (without the newline)."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[bytes]:
        if not data:
            return []
        buf = self._partial + data
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._partial = buf
            return []
        self._partial = buf[cut + 1 :]
        lines = buf[:cut].split(b"\n")
        return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]

    def reset(self) -> None:
        """Forget a partial line (the file was truncated or replaced under us)."""
        self._partial = b""

    @property
    def pending(self) -> int:
        return len(self._partial)
