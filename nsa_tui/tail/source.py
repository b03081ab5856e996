"""The reading side of a watched run, local or remote, behind one small interface."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Protocol

from nsa_train.telemetry import schema
from nsa_tui.tail.lines import split_lines

# Files that are rewritten as a whole (read entirely when they change); everything else
# under the patterns is an append-only log tailed by offset.
WHOLE_FILES = (
    schema.RUN_JSON,
    schema.LAUNCH_JSON,
    schema.SUMMARY_JSON,
    schema.EXIT_STATUS,
    schema.EXIT_STATUS_PREVIOUS,
    schema.CONFIG_YAML,
    schema.HALT_FILE,
    ".anomaly_type",
)
WHOLE_PATTERNS = ("stackdump_*.txt",)  # small, written once: read whole (health shows their names)
LINE_PATTERNS = ("*.jsonl", "*.csv", "*.log")

# On first sight, heartbeat files are read from this many bytes before their end: their
# progress records are mirrored in training.csv (read whole, for the full chart history),
# and the health rules look at recent windows only. Everything else is read from byte 0. Their events from before
# the window come later, once, found by a cheap scan (older_sh.py): the events pane lists the whole run's.
HEARTBEAT_WINDOW = 1 << 20


def initial_window(name: str) -> int | None:
    return HEARTBEAT_WINDOW if fnmatch.fnmatchcase(name, schema.HEARTBEAT_GLOB) else None


@dataclass
class Update:
    """Changes to one file since the previous read."""

    name: str  # "" with reset=True: every file starts over (after restart())
    data: bytes = b""  # complete new lines (line files), each ending in a newline
    reset: bool = False  # earlier lines of this file are void (truncated, rotated, re-created)
    content: bytes | None = None  # the whole content (whole files), None when unchanged
    deleted: bool = False  # a whole file went away
    # a heartbeat's lines from before the window its first read started at, that may be events (older_sh: every
    # progress and liveness record left out); sent once, a while after that first read
    older: bytes = b""

    @property
    def lines(self) -> list[bytes]:
        return split_lines(self.data)


class RunSource(Protocol):
    dir_missing: bool
    """The run directory was not there at the last read (deleted, moved, unmounted, or not created yet)."""

    def read(self) -> list[Update]:
        """Everything that changed since the last call (never blocks on the network)."""
        ...

    def wait(self, timeout: float) -> None:
        """Sleep until something may have changed, at most ``timeout`` seconds."""
        ...

    def restart(self) -> None:
        """Read every file again from byte 0."""
        ...

    def describe(self) -> str:
        """One short line: how we read (inotify, polling, ssh) and any trouble."""
        ...

    def trouble(self) -> str:
        """What keeps the last read from being complete, in a few words ('' when nothing)."""
        ...

    def close(self) -> None: ...
