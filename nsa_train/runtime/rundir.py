"""What a run directory already holds before a start writes into it: an earlier run's results, a live trainer."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Mapping
from pathlib import Path

from nsa_train.runtime.control import launch_time
from nsa_train.telemetry import schema
from nsa_train.telemetry.holds import earlier_run

# Where run directories live when none is given: the trainer's default --run-dir, the tools' run names (here, and
# on a host, where the variable is passed explicitly: sshd drops a client's variables unless AcceptEnv allows them)
RUNS_ROOT_ENV = "NSA_RUNS_DIR"
DEFAULT_RUNS_ROOT = "runs"


def runs_root(environ: Mapping[str, str] | None = None) -> Path:
    """$NSA_RUNS_DIR, else ./runs: the one reading of the variable (the tools' and the trainer's).

    A leading ~ is expanded: quoted in a .env file or a systemd unit no shell expanded it, and the literal path made
    a directory named ~ in the current one (whose `rm -rf ~` deletes the home directory). Empty counts as unset, as
    for the other NSA_* variables and the host's `${NSA_RUNS_DIR:-runs}`: Path('') was the current directory, whose
    subdirectories `nsa runs` then listed as runs."""
    value = (os.environ if environ is None else environ).get(RUNS_ROOT_ENV, "")
    if value == "~" or value.startswith("~/"):  # not ~user: the host's sh (remote/checkout.py) reads only these two
        value = os.path.expanduser(value)
    return Path(value) if value else Path(DEFAULT_RUNS_ROOT)


def earlier_results(run_dir: Path, environ: dict[str, str] | None = None) -> list[str]:
    """What of an earlier run ``run_dir`` holds, which a fresh start there would write over ([] for a new directory,
    or one only an attempt that stopped before its model was built wrote into): the contract's one definition
    (nsa_train.telemetry.holds), the files of the `nsa launch` that started this trainer left out."""
    return earlier_run(run_dir, own_launch=launch_time(environ))


def file_in_the_way(path: Path) -> str | None:
    """Why ``path`` cannot be made a directory when a file stands at it or at one of its parents, else None: an
    OSError there says only "File exists" or "Not a directory"."""
    for p in (path, *path.parents):
        if p.exists():
            return None if p.is_dir() else f"{p} is a file, not a directory"
    return None


_held: list[int] = []  # descriptors of the locks this process holds: open for its life (a close would release)


def hold_run_dir(run_dir: Path, rank: int) -> str | None:
    """Take this rank's lock on ``run_dir`` for the rest of the process; why not when a live trainer holds it.

    Two trainers in one directory (a --force or --resume started by hand while the run still trains, a job
    started twice) pruned each other's checkpoints and both died. `nsa launch` checks its tmux session and the
    heartbeat; this check is the trainer's own, for every way it is started. A file system without flock
    (ENOLCK on some network mounts) leaves the check out rather than the run."""
    path = run_dir / schema.trainer_lock_name(rank)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None  # an unwritable directory: the heartbeat's own write says so, in its words
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            os.close(fd)
            return None
        holder = os.read(fd, 32).decode("ascii", errors="replace").strip()
        os.close(fd)
        return (
            f"{run_dir} is in use: a live trainer (pid {holder or 'unknown'}, rank {rank}) writes to it; stop it "
            f"first (`nsa halt {run_dir}`), or choose another --run-dir"
        )
    _held.append(fd)
    return None


def sign_held_locks() -> None:
    """Write this process's pid into the locks it holds, for the refusal of a second trainer to name. Once the
    start is accepted: a start refused after taking the lock (an earlier run there, a resume with nothing to do)
    leaves the directory's files as they were."""
    for fd in _held:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
