"""A full disk (or quota) under a run directory: recognised wherever a write fails, told in one line.

Standard library only: the heartbeat writer uses it before torch is imported, the checkpoint writer after.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from nsa_train.telemetry.units import human_bytes

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(Exception):
    """A run's file could not be written for lack of space; the message says which, where and what to do."""


def disk_full(e: BaseException | None) -> OSError | None:
    """The out-of-space error behind ``e``, if any: torch.save reports it as a RuntimeError from its zip writer
    ("unexpected pos ..."), with the OSError only as that exception's context."""
    seen = 0
    while e is not None and seen < 8:
        if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
            return e
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None


def free_space(directory: Path) -> str:
    try:
        return f"{human_bytes(shutil.disk_usage(directory).free)} free"
    except OSError:
        return "free space unknown"


def disk_full_message(path: Path, e: OSError, free: str, then: str | None = None) -> str:
    """``cannot write NAME in DIR: no space left on device (FREE); THEN`` (without THEN when None)."""
    why = "disk quota exceeded" if e.errno == errno.EDQUOT else "no space left on device"
    said = f"cannot write {path.name} in {path.parent}: {why} ({free})"
    return f"{said}; {then}" if then is not None else said
