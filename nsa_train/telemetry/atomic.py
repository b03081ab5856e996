"""One way to replace a small run file (config.yaml, run.json, summary.json, launch.json, exit_status) so that a
reader sees the old content or the new, never part of it: the trainer and the tools both write with it.
Standard library only (the tools import it)."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomic(path: Path, text: str) -> None:
    """A temp file beside ``path`` (this process's own: two writers never share one), flushed and fsynced, then
    renamed over it. Raises the OSError of a failed write, its temp file removed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
