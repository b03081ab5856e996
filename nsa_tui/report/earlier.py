"""Which checkpoints of a run directory an earlier run left: a fresh start (`--force`) over it keeps that run's files
until train.keep_last prunes them, and a report that listed them as this run's offered its weights for this run's."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

from nsa_train.telemetry import schema
from nsa_tui.runs import Event


def this_runs_checkpoints(events: Iterable[Event], fresh_start: float, order: list[str] | None) -> set[str]:
    """The checkpoint file names this run wrote since its fresh start at ``fresh_start`` (rank 0's boot time): those
    its `checkpoint` records name, and (by ``order``, checkpoints/order's names, oldest written first) every file
    written after the first of them (a save cut before its record). The rest were written before it."""
    own = {
        PurePosixPath(e.fields["path"]).name
        for e in events
        if e.kind == schema.KIND_CHECKPOINT
        and e.rank in (0, None)
        and e.ts is not None
        and e.ts >= fresh_start
        and isinstance(e.fields.get("path"), str)
    }
    listed = [i for i, name in enumerate(order or ()) if name in own]
    if listed and order is not None:
        own.update(order[min(listed) :])
    return own
