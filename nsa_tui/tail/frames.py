"""Parse the framed stream printed by remote_script.SCRIPT (pure; fed arbitrary byte splits).

Every payload is preceded by a header that states its exact length, so the parser never
looks for delimiters inside file bytes: NULs, stray newlines or invalid UTF-8 in a log
cannot desync it. A header that does not parse means the stream is broken (we reconnect).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_HEADER = 4096
# the line remote_script.SCRIPT prints before its first frame: what a login shell prints before it (a greeting
# from its rc file) is no frame, and is skipped by a parser that waits for this line
START = b"@@nsa-watch@@"


class FrameError(Exception):
    """The stream is not what remote_script.SCRIPT prints."""


@dataclass(frozen=True)
class Frame:
    # "D" appended bytes, "R" a log file (re)starting at offset, "M" mtime, "W" whole file, "F" present,
    # "E" end of round, "N" no run dir, "X" no temp file could be written (name: its path on the host),
    # "T" the run's tmux sessions (data: a name a line), "P" the host's live pids (name: the host's name),
    # "O" a heartbeat's event lines from before offset, where its first-read window started (remote_script),
    # "B" the run's first boot record, "V" the path the run directory was renamed to, "C" the directories that hold
    # the run while its own is gone (a path a line)
    kind: str
    name: str = ""
    inode: int = 0
    offset: int = 0
    data: bytes = b""
    round: int = 0
    mtime: int = 0  # "M": the file's mtime on the remote clock, 0 when unknown
    edge: tuple[int, int] = (0, 0)  # "D"/"R": (length, cksum) of the last bytes sent, just before the new offset
    now: int = 0  # "E": the remote clock at the end of the round, 0 when unknown


class FrameParser:
    def __init__(self, *, wait_for_start: bool = False) -> None:
        """``wait_for_start``: skip every byte before the line START (then the frames follow)."""
        self._buf = bytearray()
        self._before: bytearray | None = bytearray(b"\n") if wait_for_start else None
        # kind, name, inode, offset, length, edge of a header whose payload is still to come
        self._header: tuple[str, str, int, int, int, tuple[int, int]] | None = None

    def feed(self, data: bytes) -> list[Frame]:
        if self._before is not None:
            self._before += data
            at = self._before.find(b"\n" + START + b"\n")
            if at < 0:
                del self._before[: -len(START) - 1]  # only what may still begin the start line
                return []
            data = bytes(self._before[at + len(START) + 2 :])
            self._before = None
        self._buf += data
        out: list[Frame] = []
        while True:
            if self._header is None:
                nl = self._buf.find(b"\n")
                if nl < 0:
                    if len(self._buf) > MAX_HEADER:
                        raise FrameError("header too long")
                    return out
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                frame = self._parse_header(line)
                if frame is not None:
                    out.append(frame)
                    continue
            kind, name, inode, offset, length, edge = self._header  # type: ignore[misc]
            if len(self._buf) < length:
                return out
            payload = bytes(self._buf[:length])
            del self._buf[:length]
            self._header = None
            out.append(Frame(kind, name=name, inode=inode, offset=offset, data=payload, edge=edge))

    def _parse_header(self, line: bytes) -> Frame | None:
        """A header-only frame, or None after storing a header whose payload follows."""
        try:
            text = line.decode("utf-8")
            kind, _, rest = text.partition(" ")
            if kind == "E":
                rnd, _, now = rest.partition(" ")
                return Frame("E", round=_nat(rnd), now=_nat(now) if now else 0)
            if kind == "M":
                ino, mt, name = rest.split(" ", 2)
                return Frame("M", name=name, inode=_nat(ino), mtime=_nat(mt))
            if kind == "N" and not rest:
                return Frame("N")
            if kind in ("F", "X") and rest:
                return Frame(kind, name=rest)
            if kind in ("D", "R"):
                ino, off, n, edge_len, edge_sum, name = rest.split(" ", 5)
                self._header = (kind, name, _nat(ino), _nat(off), _nat(n), (_nat(edge_len), _nat(edge_sum)))
                return None
            if kind in ("T", "B", "V", "C"):
                self._header = (kind, "", 0, 0, _nat(rest), (0, 0))
                return None
            if kind == "P":
                n, host = rest.split(" ", 1)
                self._header = ("P", host, 0, 0, _nat(n), (0, 0))
                return None
            if kind == "O":
                ino, off, n, name = rest.split(" ", 3)
                self._header = ("O", name, _nat(ino), _nat(off), _nat(n), (0, 0))
                return None
            if kind == "W":
                ino, n, name = rest.split(" ", 2)
                self._header = ("W", name, _nat(ino), 0, _nat(n), (0, 0))
                return None
        except ValueError:
            pass
        raise FrameError(f"unexpected header {line[:80]!r}")


def _nat(s: str) -> int:
    if not s.isdigit():
        raise ValueError(s)
    return int(s)
