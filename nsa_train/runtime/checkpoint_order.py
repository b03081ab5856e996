"""The order checkpoint files were written in: what pruning keeps and what a resume calls "written after latest".

Each save records its file in ``checkpoints/order`` (schema.CHECKPOINT_ORDER: file names, oldest written first, one
a line) once the file is durable and before the pointers move. The order is not the step order: a fresh start
(`--force`) over an earlier run's directory writes step_5 after that run's step_60, and by step its own files would
be pruned first. Nor is it the files' mtimes: `cp -r`, `scp -r` without -p and `rsync -r` without -t give a copy's
files new mtimes in directory order, and by those a resumed copy pruned its highest steps and advised rolling
`latest` back to an old file.

A file the order does not name (from a run written before the order file existed, or a save cut between the file and
its line) counts as written after the others when it is newer than the order file (without one, than the file
`latest` names) and past `latest`'s step; before them otherwise, by step, those past `latest`'s step first (an
earlier run's, which a fresh start over it left). Mtimes alone never put a lower step than `latest`'s after it:
they are what a copy changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nsa_train.telemetry import schema
from nsa_train.telemetry.pointers import read_order, read_pointer


@dataclass(frozen=True)
class WriteOrder:
    """A checkpoint directory's files by write order: ``early`` (not in the order file, older than it: by mtime),
    ``recorded`` (as the order file lists them), ``late`` (not in it, written since, past `latest`: by mtime)."""

    early: list[Path]
    recorded: list[Path]
    late: list[Path]

    @property
    def files(self) -> list[Path]:
        """Oldest written first."""
        return [*self.early, *self.recorded, *self.late]


def order_file(ckpt_dir: Path) -> Path:
    return ckpt_dir / schema.CHECKPOINT_ORDER


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:  # removed since it was listed
        return 0.0


def write_order(ckpt_dir: Path, paths: list[Path]) -> WriteOrder:
    """``paths`` (checkpoint files in ``ckpt_dir``) by the order they were written."""
    names = read_order(ckpt_dir)
    listed = set(names or ())
    present = {p.name: p for p in paths}
    recorded = [present[n] for n in names or () if n in present]
    latest = read_pointer(ckpt_dir, schema.LATEST_POINTER).name  # its name, whether or not that file is here
    latest_step = schema.checkpoint_step(latest) if latest else None
    # what an unnamed file must be newer than to count as written since: the order file's last save; without one
    # (a run from before it), the file `latest` names
    if names is not None:
        since = _mtime(order_file(ckpt_dir))
    elif latest is not None and latest in present:
        since = _mtime(present[latest])
    else:
        since = float("-inf")

    def past_latest(p: Path) -> bool:
        step = schema.checkpoint_step(p.name)
        return latest_step is None or (step is not None and step > latest_step)

    unnamed = sorted((p for p in paths if p.name not in listed), key=lambda p: (_mtime(p), p.name))
    late = [p for p in unnamed if _mtime(p) > since and past_latest(p)]
    # the rest by step, not mtime (a copy's mtimes say nothing): a step below `latest`'s was written before it; one
    # past it, older than the order file or `latest`'s file, is an earlier run's that a fresh start left: first
    early = sorted(
        (p for p in unnamed if p not in late),
        key=lambda p: (latest_step is None or not past_latest(p), schema.checkpoint_step(p.name) or -1, p.name),
    )
    return WriteOrder(early=early, recorded=recorded, late=late)


def order_after_save(ckpt_dir: Path, paths: list[Path], saved: str) -> str:
    """The order file's text once ``saved`` is written: the files it names and those written since it was last
    updated (a cut save's), then ``saved``; files no longer there (pruned) are left out, so it stays as short as
    the directory. Files from before it existed stay unnamed: nothing recorded when they came."""
    order = write_order(ckpt_dir, paths)
    names = [p.name for p in (*order.recorded, *order.late) if p.name != saved]
    return "".join(f"{n}\n" for n in (*names, saved))


def written_after(order: WriteOrder, target: Path) -> list[Path]:
    """The files written after ``target``, oldest first. One the order file names is; an unnamed one only with a
    higher step than ``target``'s: mtimes alone (which a copy changes) never say an earlier step is newer."""
    files = order.files
    if target not in files:
        return []
    recorded = {p.name for p in order.recorded}
    since = schema.checkpoint_step(target.name)

    def newer(p: Path) -> bool:
        step = schema.checkpoint_step(p.name)
        return p.name in recorded or (step is not None and (since is None or step > since))

    return [p for p in files[files.index(target) + 1 :] if newer(p)]
