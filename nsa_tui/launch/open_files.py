"""What a process holds open, by identity (/proc/PID/fd: Linux): the run directory a trainer or a launch wrapper
works in, wherever it was renamed to since it started (both keep it open for their life and follow a rename:
nsa_train/runtime/run_dir_moves.py), and never a copy of it (`cp -r` makes other inodes). Its command line names the
path it started at, which after `mv runs/a runs/b` is no longer the run's. Standard library only."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def _descriptors(pid: int) -> list[str] | None:
    """The /proc paths of the process's open descriptors, lowest first (the run directory is opened at its start);
    None when they cannot be read (another user's process, no /proc)."""
    where = f"/proc/{pid}/fd"
    try:
        names = os.listdir(where)
    except OSError:
        return None
    return [f"{where}/{n}" for n in sorted(names, key=lambda n: int(n) if n.isdecimal() else -1)]


def _identity(path: str | Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)  # a /proc descriptor link leads to the file itself, wherever it is now
    except OSError:  # closed since it was listed, or not there
        return None
    return st.st_dev, st.st_ino, stat.S_IFMT(st.st_mode)


def holds(pid: int, path: Path) -> bool | None:
    """Whether process ``pid`` holds ``path`` open (the same file or directory, not one of the same name); None when
    its descriptors cannot be read."""
    wanted = _identity(path)
    fds = _descriptors(pid)
    if fds is None:
        return None
    return wanted is not None and any(_identity(fd) == wanted for fd in fds)


def held_directories(pid: int) -> list[Path]:
    """The directories process ``pid`` holds open, at their paths now ([] when none, or they cannot be read; a
    deleted one has no path)."""
    out = []
    for fd in _descriptors(pid) or []:
        ident = _identity(fd)
        if ident is None or ident[2] != stat.S_IFDIR:
            continue
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("/") and _identity(link) == ident:  # at that path still (not deleted, not moved since)
            out.append(Path(link))
    return out
