"""Resolve RUN arguments: a run directory, or a run name under the runs root."""

from __future__ import annotations

import os
from pathlib import Path

from nsa_tui.errors import UserError

RUNS_ROOT_ENV = "NSA_RUNS_DIR"
# the files whose newest mtime (or the directory's own) is a run's last activity: the newest run is the one
# with the latest (here, and in the remote script of nsa_tui.remote.checkout)
ACTIVITY_FILES = ("run.json", "launch.json", "heartbeat_rank0.jsonl", "training.csv")


def runs_root() -> Path:
    """Where run names live: $NSA_RUNS_DIR or ./runs."""
    return Path(os.environ.get(RUNS_ROOT_ENV, "runs"))


def _activity_time(d: Path) -> float:
    """Newest mtime among the files that show a run's activity (the dir itself otherwise)."""
    best = d.stat().st_mtime
    for name in ACTIVITY_FILES:
        p = d / name
        if p.exists():
            best = max(best, p.stat().st_mtime)
    return best


# files only a run directory has at its top (the trainer's and the launcher's own)
RUN_MARKERS = ("run.json", "launch.json", "heartbeat_rank0.jsonl", "training.csv", "console.log")


def is_run_dir(d: Path) -> bool:
    return any((d / name).is_file() for name in RUN_MARKERS)


def list_runs(root: Path | None = None) -> list[Path]:
    """Run directories under root, newest activity first."""
    root = root or runs_root()
    if not root.is_dir():
        return []
    dirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(dirs, key=_activity_time, reverse=True)


def resolve_run(run: str | None, root: Path | None = None) -> Path:
    """A RUN argument to an existing directory; None means the most recent run. The error names absolute
    paths: run by `nsa ... --host`, the relative ones would read as paths on the caller's machine."""
    root = root or runs_root()
    if run is None:
        runs = list_runs(root)
        if not runs:
            where = root.absolute()
            raise UserError(f"no runs under {where}/ (pass a run directory, or start one with `nsa launch`)", code=3)
        return runs[0]
    p = Path(run)
    if p.is_dir():
        return p
    named = root / run
    if named.is_dir():
        return named
    if p.is_absolute():  # root / run is the same path: nowhere else was looked at
        raise UserError(f"no run directory {run!r}", code=3)
    raise UserError(f"no run directory {run!r} (looked at {p.absolute()} and {named.absolute()})", code=3)
