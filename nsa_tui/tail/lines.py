"""Turn appended byte chunks into complete lines; a partial last line waits."""

from __future__ import annotations

from nsa_tui.runs.tail import MAX_LINE_BYTES


def split_lines(blob: bytes) -> list[bytes]:
    """Lines of a blob of complete lines (each ends in a newline), without their newline/CR."""
    if not blob:
        return []
    lines = blob.split(b"\n")
    lines.pop()  # the empty string after the final newline
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]


class LineSplitter:
    """Buffers bytes and hands out only whole lines, as one blob ending in a newline
    (splitting into a list is left to the consumer: a bulk loader parses the blob as is)."""

    def __init__(self) -> None:
        self._partial = b""
        self._skip_first = False

    def start_mid_line(self) -> None:
        """The next bytes start somewhere inside a line: drop everything up to its newline."""
        self._skip_first = True
        self._partial = b""

    def feed_blob(self, data: bytes) -> bytes:
        if not data:
            return b""
        if self._skip_first:
            nl = data.find(b"\n")
            if nl < 0:
                return b""
            self._skip_first = False
            data = data[nl + 1 :]
        cut = data.rfind(b"\n")
        if cut < 0:
            # a line that never ends (a binary file under a telemetry name) must not grow without limit: what is
            # kept past MAX_LINE_BYTES already makes it a line too long, dropped and counted where it is read
            self._partial = (self._partial + data)[: MAX_LINE_BYTES + 1]
            return b""
        blob = self._partial + data[: cut + 1] if self._partial else data[: cut + 1]
        self._partial = data[cut + 1 :][: MAX_LINE_BYTES + 1]
        return blob

    def feed(self, data: bytes) -> list[bytes]:
        return split_lines(self.feed_blob(data))

    def reset(self) -> None:
        """Forget a partial line (the file was truncated or replaced under us)."""
        self._partial = b""
        self._skip_first = False

    @property
    def pending(self) -> int:
        return len(self._partial)
