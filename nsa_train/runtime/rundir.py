"""What a run directory already holds before a fresh (not --resume) start writes into it."""

from __future__ import annotations

from pathlib import Path

from nsa_train.telemetry import schema


def earlier_results(run_dir: Path) -> list[str]:
    """The results of an earlier run in ``run_dir``: its checkpoints and logged steps, as short phrases ([] for a
    new directory, or one only an attempt that failed before training wrote into: its heartbeat, config and
    summary). A fresh start there would prune those checkpoints, move their pointers and append to those logs."""
    found = []
    ckpt_dir = run_dir / schema.CHECKPOINT_DIR
    if ckpt_dir.is_dir():
        n = sum(1 for p in ckpt_dir.glob("step_*" + schema.CHECKPOINT_SUFFIX) if not p.name.startswith("."))
        pointers = [name for name in (schema.LATEST_POINTER, schema.BEST_POINTER) if (ckpt_dir / name).is_file()]
        if n:
            found.append(f"{n} checkpoint{'' if n == 1 else 's'}")
        elif pointers:
            found.append(f"checkpoint pointer {pointers[0]}")
    # not summary.json: an attempt that failed before its first step writes one too (steps_completed 0)
    for name in (schema.TRAINING_CSV, schema.VAL_CSV):
        if _has_rows(run_dir / name):
            found.append(name)
    return found


def _has_rows(path: Path) -> bool:
    """A CSV with at least one line after its header."""
    try:
        with open(path, "rb") as fh:
            return len(fh.read(1 << 16).splitlines()) > 1
    except OSError:
        return False


def file_in_the_way(path: Path) -> str | None:
    """Why ``path`` cannot be made a directory when a file stands at it or at one of its parents, else None: an
    OSError there says only "File exists" or "Not a directory"."""
    for p in (path, *path.parents):
        if p.exists():
            return None if p.is_dir() else f"{p} is a file, not a directory"
    return None
