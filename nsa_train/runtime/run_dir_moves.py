"""A run directory renamed or deleted under a running trainer.

The files the trainer keeps open (its heartbeat, training.csv, val.csv, train.log, its lock) follow a rename on the
same filesystem; what it opens by path (checkpoints, summary.json, run.json, .HALT, stack dumps, TensorBoard's events)
went to the old path, which is gone: `mv runs/exp runs/exp-lr3e-4` crashed the run within seconds and lost its steps
since the last checkpoint. A descriptor of the directory, held for the process's life, says where the directory is
now (Linux: the link /proc/self/fd/N), so the trainer reads it at each step and phase (one readlink, about a
microsecond) and writes there from then on.

A deleted directory (the link ends in ' (deleted)'; `mv` to another filesystem copies, then deletes) or one this
process cannot reach under its new name (another mount namespace) can take nothing more of the run: it ends in one
line saying so. Without /proc the directory is known only by its path: a move is found (its path no longer holds
it) but not followed.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC_FD = "/proc/self/fd"
DELETED = " (deleted)"  # what Linux appends to the link of an open directory that was removed


class RunDirLost(Exception):
    """The run directory was deleted or moved where this process cannot follow it: nothing more can be written."""

    every_rank = True  # every rank's directory is the same: rank 0 says it once (train.py's _Ending)


class FollowedRunDir:
    """The run directory, followed through renames: ``path`` is where it is as of the last ``follow``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lost: str | None = None  # why ``follow`` raised RunDirLost: nothing is written there any more
        self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)  # open for the process's life
        st = os.fstat(self._fd)
        self._identity = (st.st_dev, st.st_ino)
        # compared with later readings, not with ``path``: a path given through a symlink reads as its target
        self._link = self._read_link()

    @property
    def stable(self) -> Path:
        """A path that leads to the directory wherever it went (/proc/self/fd/N), for the files no one reads by
        name (TensorBoard's writer thread opens its events file by path at each write); ``path`` without /proc."""
        return Path(PROC_FD, str(self._fd)) if self._link is not None else self.path

    def follow(self) -> Path | None:
        """The directory's new path when it moved since the last call (``path`` becomes it), else None. RunDirLost
        when it was deleted or cannot be reached under its new name."""
        if self.lost is not None:
            raise RunDirLost(self.lost)
        link = self._read_link()
        if link is None:  # no /proc: only whether the path still leads to it
            if self._holds(self.path):
                return None
            raise self._lose(self._unfollowable(None))
        if link == self._link:
            return None
        new = Path(link)
        if not self._holds(new):
            deleted = link.endswith(DELETED)
            raise self._lose(self._deleted() if deleted else self._unfollowable(new))
        self.path, self._link = new, link
        return new

    def _read_link(self) -> str | None:
        try:
            return os.readlink(f"{PROC_FD}/{self._fd}")
        except OSError:
            return None

    def _holds(self, path: Path) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._identity

    def _lose(self, message: str) -> RunDirLost:
        self.lost = message
        return RunDirLost(message)

    def _deleted(self) -> str:
        return (
            f"the run directory {os.path.abspath(self.path)} was deleted while the trainer ran (a `mv` to another "
            "filesystem copies it, then deletes it): nothing more of the run can be written, so it stops here; resume "
            "a copy of the directory with --resume --run-dir COPY"
        )

    def _unfollowable(self, new: Path | None) -> str:
        what = (
            f"was moved to {new}, which this process cannot reach by that name"
            if new
            else f"is not at its path any more (moved or deleted: without {PROC_FD} a rename cannot be followed)"
        )
        return (
            f"the run directory {os.path.abspath(self.path)} {what}: nothing more of the run can be written, so it "
            "stops here; resume it where it is now with --resume --run-dir NEW-PATH"
        )
