"""What a path that exists but is neither a regular file nor a directory is, in words (stdlib only: the config
loader, which the tools import, and the data sources both name it)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def special_kind(p: Path | str) -> str:
    """What a path that exists and is neither a regular file nor a directory is, in words."""
    mode = os.stat(p).st_mode
    for test, kind in (
        (stat.S_ISFIFO, "named pipe"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return kind
    return "special file"
