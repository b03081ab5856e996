"""Reading a run's own heartbeat back, for the trainer (a --resume) and the tools alike: which ranks wrote a
checkpoint. Torch-free and cheap: heartbeats grow for days, so they are read from their end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nsa_train.telemetry import schema


def heartbeat_files(run_dir: Path) -> dict[int, Path]:
    """{rank: heartbeat_rank<rank>.jsonl}, in rank order (as numbers: rank 10 after rank 2)."""
    out = {}
    for p in run_dir.glob(schema.HEARTBEAT_GLOB):
        rank = schema.heartbeat_rank(p.name)
        if rank is not None:
            out[rank] = p
    return dict(sorted(out.items()))


def records_backwards(path: Path, chunk: int = 1 << 20) -> Iterator[dict[str, Any]]:
    """The decodable records of a JSONL file, newest first, read from its end in ``chunk``-byte
    pieces: finding one old record does not load a heartbeat that grew for weeks."""
    try:
        f = path.open("rb")
    except OSError:
        return
    with f:
        pos = f.seek(0, os.SEEK_END)
        rest = b""  # the start of a line whose beginning is in the next (earlier) chunk
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            lines = (f.read(pos - start) + rest).split(b"\n")
            pos = start
            rest = lines.pop(0) if pos > 0 else b""
            for line in reversed(lines):
                if line.strip() and (r := schema.decode(line)) is not None:
                    yield r


def checkpoint_world_size(run_dir: Path, checkpoint_name: str) -> int | None:
    """How many ranks wrote checkpoint ``checkpoint_name`` (a file name in checkpoints/): the
    ``world_size`` of the boot record before rank 0's last ``checkpoint`` record for that file (a
    trainer process boots, then saves). None when rank 0's heartbeat does not say."""
    path = heartbeat_files(run_dir).get(0)
    if path is None:
        return None
    saved = False
    for r in records_backwards(path):
        kind = r.get("kind")
        if not saved and kind == schema.KIND_CHECKPOINT:
            saved = Path(str(r.get("path", ""))).name == checkpoint_name
        elif saved and kind == schema.KIND_BOOT:
            return schema.world_size_of(r)
    return None


def current_world_size(run_dir: Path) -> int | None:
    """The ``world_size`` of rank 0's newest boot record (the ranks of the current attempt: heartbeat files of
    higher ranks are an earlier attempt's); None when rank 0's heartbeat does not say."""
    path = heartbeat_files(run_dir).get(0)
    if path is None:
        return None
    for r in records_backwards(path):
        if r.get("kind") == schema.KIND_BOOT:
            return schema.world_size_of(r)
    return None
