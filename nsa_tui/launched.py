"""The per-user index of runs `nsa launch` started: name, absolute run directory, host, time.

A run is named relative to the runs root ($NSA_RUNS_DIR, else ./runs), so from another directory its name found
nothing, though its tmux session ran on. The index remembers where each launched run is, so a name that is not
found where the commands look today is looked up here (nsa_tui.rundir.resolve_run), and `nsa runs` with no runs
directory here lists these. Standard library only (the tools never import torch).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nsa_train.telemetry.atomic import write_text_atomic

STATE_HOME_ENV = "XDG_STATE_HOME"
DEFAULT_STATE_HOME = "~/.local/state"  # the XDG Base Directory default
INDEX_NAME = "launched.jsonl"
MAX_BYTES = 256 * 1024  # past this the oldest lines are dropped (about 2000 launches): never a growing log
RECENT = 20  # how many `nsa runs` lists when it lists the index


@dataclass(frozen=True)
class Launched:
    """One launch as the index recorded it."""

    name: str
    run_dir: str  # absolute
    host: str
    ts: float


def index_path() -> Path:
    """$XDG_STATE_HOME/nsa/launched.jsonl, else ~/.local/state/nsa/launched.jsonl. A relative $XDG_STATE_HOME is
    ignored, as the XDG spec says: it would be a different file in every directory. An OSError without a home."""
    home = os.environ.get(STATE_HOME_ENV, "")
    base = Path(home) if os.path.isabs(home) else Path(os.path.expanduser(DEFAULT_STATE_HOME))
    if not base.is_absolute():  # no home to expand ~ in: no index, rather than one in the current directory
        raise OSError(f"no home directory for {DEFAULT_STATE_HOME} (set {STATE_HOME_ENV})")
    return base / "nsa" / INDEX_NAME


def record(name: str, run_dir: Path, ts: float) -> None:
    """Append this launch to the index, one line in one write under a lock; the oldest lines are dropped once it
    outgrows MAX_BYTES. Raises the OSError of a failed write (the caller warns: the run is started all the same)."""
    path = index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"name": name, "run_dir": str(run_dir), "host": socket.gethostname(), "ts": ts}) + "\n"
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # another launch compacted it while this one waited: append to the new file
                continue
            os.write(fd, line.encode())
            if os.fstat(fd).st_size > MAX_BYTES:
                _compact(path)
            return
        finally:
            os.close(fd)  # releases the lock


def _compact(path: Path) -> None:
    """Keep the newest half of the index's lines (called with the lock held): compacted once per ~1000 launches."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    write_text_atomic(path, "".join(lines[len(lines) // 2 :]))


def _parse(line: str) -> Launched | None:
    """One line's launch; None for a line that is not one (cut by a full disk, edited by hand): skipped, not fatal."""
    try:
        d = json.loads(line)
    except ValueError:
        return None
    if not isinstance(d, dict):
        return None
    name, run_dir, host, ts = d.get("name"), d.get("run_dir"), d.get("host"), d.get("ts")
    if not (isinstance(name, str) and name and isinstance(run_dir, str) and os.path.isabs(run_dir)):
        return None
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return None
    return Launched(name, run_dir, host if isinstance(host, str) else "", float(ts))


def entries() -> list[Launched]:
    """Every readable launch in the index, oldest first; [] when there is no index (or it cannot be read)."""
    try:
        with open(index_path(), encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return []
    return [e for e in (_parse(line) for line in lines) if e is not None]


def _is_dir(p: str) -> bool:
    try:
        return os.path.isdir(p)
    except OSError:
        return False


def _latest(keep: Callable[[str], bool], real: Callable[[str], str]) -> list[Launched]:
    """The launches whose directory ``keep`` takes, each directory once (its latest launch: a --resume or a --force
    records it again; ``real`` its path with links resolved), newest first."""
    latest: dict[str, Launched] = {}
    for e in entries():
        if keep(e.run_dir):
            latest[real(e.run_dir)] = e  # later lines win
    return sorted(latest.values(), key=lambda e: e.ts, reverse=True)


def runs_here() -> list[Launched]:
    """The launched runs whose directory is still there, newest first."""
    return _latest(_is_dir, os.path.realpath)


def runs_gone() -> list[Launched]:
    """The launched runs whose directory is not there any more (deleted, or moved where nothing says), newest first;
    a path something else took since (a file) is neither."""
    return _latest(lambda p: not os.path.lexists(p), real_parent_join())


def real_parent_join() -> Callable[[str], str]:
    """A path that is not there with its parent's links resolved, each parent once: what os.path.realpath gives it,
    at a fraction of the calls (a realpath per launch of a full index took 30 ms)."""
    parents: dict[str, str] = {}

    def real(path: str) -> str:
        parent, name = os.path.split(path)
        if parent not in parents:
            parents[parent] = os.path.realpath(parent)
        return os.path.join(parents[parent], name)

    return real


def named(name: str) -> list[Launched]:
    """The launched runs called ``name`` whose directory is still there, newest first."""
    return [e for e in runs_here() if e.name == name]
