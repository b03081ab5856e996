"""Where a run directory that is no longer at its path went: renamed while it trained (the trainer follows a rename,
docs/telemetry.md, `moved`) or after it ended.

A rank 0 heartbeat begins with the boot record of the run's first attempt, which holds the absolute run directory it
started in. A directory beside the old path, or under the runs root, whose heartbeat begins there is that run under
its new name: one small read per directory, no heartbeat scanned. A run first started elsewhere, or moved to another
parent, is not found. Standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

from nsa_train.telemetry import schema

HEAD_BYTES = 8192  # a boot record is a few hundred bytes (its argv the most)


def first_boot(d: Path) -> bytes | None:
    """The first line of ``d``'s rank 0 heartbeat when it is a boot record (the run's first attempt: its time, pid
    and directory say which run it is); None without one."""
    try:
        with open(d / schema.heartbeat_name(0), "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        return None
    line = head.split(b"\n", 1)[0]
    rec = schema.decode(line)
    return line if rec and rec.get("kind") == schema.KIND_BOOT else None


def first_run_dir(d: Path) -> str | None:
    """The run directory the first boot record of ``d``'s rank 0 heartbeat names; None without one."""
    line = first_boot(d)
    said = schema.decode(line).get("run_dir") if line is not None else None
    return said if isinstance(said, str) else None


def renamed_to(old: Path, *roots: Path, boot: bytes | None = None) -> list[Path]:
    """The directories beside ``old`` (and under ``roots``) whose run first booted at ``old``, a path not there.
    With ``boot``, the first boot record of the run that was at ``old`` (`nsa watch` read it there), those that
    begin with it: the same run however often it was renamed, not a new run started since at its first path."""
    here = str(old.resolve())  # as the trainer recorded it (Path.resolve), the parent's links resolved alike

    def same_run(d: Path) -> bool:
        return first_boot(d) == boot if boot is not None else first_run_dir(d) == here

    found: list[Path] = []
    for parent in dict.fromkeys(Path(os.path.abspath(p)) for p in (old.parent, *roots)):
        found += [Path(e.path) for e in _subdirs(parent) if e.path != here and same_run(Path(e.path))]
    return sorted(found)


def renamed_from(parent: Path) -> set[str]:
    """The paths the runs in ``parent`` first booted at where they are not now: the old paths of runs renamed there."""
    was = {e.path: first_run_dir(Path(e.path)) for e in _subdirs(Path(os.path.abspath(parent)))}
    return {w for path, w in was.items() if w is not None and w != path}


def _subdirs(parent: Path) -> list[os.DirEntry[str]]:
    """The directories in ``parent`` but hidden ones; none when it cannot be listed."""
    try:
        return [e for e in os.scandir(parent) if not e.name.startswith(".") and e.is_dir()]
    except OSError:
        return []
