"""`nsa dump`: SIGUSR1 to every rank's trainer so it writes its Python stacks to a file.

PIDs come from each rank's latest heartbeat record. Before signalling we check the
process is alive, is ours, and is a trainer of this run (its command line names
nsa_train and this run dir, or it holds this run dir open, renamed since: is_its_trainer):
a PID from an old or remote run may have been reused.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nsa_train.runtime.control import proc_stat_fields
from nsa_train.telemetry import schema
from nsa_train.telemetry.readback import current_world_size
from nsa_tui.errors import UserError
from nsa_tui.launch import runstate
from nsa_tui.launch.open_files import holds
from nsa_tui.rundir import holds_run, no_run_error, run_name
from nsa_tui.runs.load import started_after, stopped_ranks
from nsa_tui.runs.records import to_float
from nsa_tui.stopped_ranks import Stop, stopped_ranks_text

DUMP_WAIT_S = 15.0
# /proc/PID/stat's state of a stopped process: by a signal (SIGSTOP, ctrl-z), or by a tracer (a debugger), which
# SIGCONT does not resume
SIGNAL_STOPPED, TRACE_STOPPED = "T", "t"


@dataclass(frozen=True)
class RankProcess:
    rank: int
    pid: int | None
    problem: str | None  # why we will not signal it
    gone: bool = False  # its pid is not running at all (not merely someone else's, or reused)
    # its pid runs something else: reused, or the trainer of another directory (the one this was copied from)
    other: bool = False
    # this run's trainer as /proc/PID/stat read it when checked (the one place its state is read): how it is stopped
    # (state T: SIGSTOP, ctrl-z; t: a debugger or tracer), None when it is not, and its parent (torchrun while that
    # lives)
    stop: Stop | None = None
    ppid: int | None = None


def process_argv(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode("utf-8", errors="replace") for a in raw.split(b"\0") if a]


def _names_run_dir(argv: list[str], run_dir: Path, cwd: str | None = None) -> bool:
    """The trainer's --run-dir (``--run-dir X`` or ``--run-dir=X``; a relative one is relative to the trainer's own
    working directory, ``cwd``) is this run; without one (a run started by hand in its default directory) the
    command line cannot tell, and the start time (started_after) decides."""
    want = run_dir.resolve()
    given = None
    for i, a in enumerate(argv):
        if a == "--run-dir" and i + 1 < len(argv):
            given = argv[i + 1]
        elif a.startswith("--run-dir="):
            given = a.split("=", 1)[1]
    if given is None:
        return True
    try:
        return (Path(cwd or ".") / given).resolve() == want
    except OSError:
        return False


def command_names_run_dir(pid: int, run_dir: Path, argv: list[str] | None = None) -> bool:
    """The process's command line (``argv`` when read already) names ``run_dir`` as its --run-dir (or names none)."""
    argv = process_argv(pid) if argv is None else argv
    try:
        cwd: str | None = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        cwd = None
    return argv is not None and _names_run_dir(argv, run_dir, cwd)


def is_its_trainer(pid: int, argv: list[str], run_dir: Path) -> bool:
    """Whether process ``pid`` (command line ``argv``) is the trainer of ``run_dir``: the one rule of every command
    (status, runs, watch, report, halt, dump, launch). Its command line names the directory it started in; renamed
    since (`mv runs/a runs/b`: it trains on there), the directory is still its own, which it holds open for its life
    (nsa_train/runtime/run_dir_moves.py), while a `cp -r` copy, made of other inodes, never is."""
    if not any("nsa_train" in a for a in argv):
        return False
    return command_names_run_dir(pid, run_dir, argv) or bool(holds(pid, run_dir))


def check_process(rank: int, pid: int | None, run_dir: Path, written_at: float | None = None) -> RankProcess:
    """Whether pid is this run's trainer for ``rank``, whose last record was ``written_at`` (when known)."""
    if not isinstance(pid, int) or pid <= 0:
        return RankProcess(rank, None, "no pid in its heartbeat")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return RankProcess(rank, pid, f"pid {pid} is not running", gone=True)
    except PermissionError:
        return RankProcess(rank, pid, f"pid {pid} belongs to another user")
    argv = process_argv(pid)
    if argv is None:
        return RankProcess(rank, pid, f"pid {pid}: cannot read its command line")
    if started_after(pid, written_at) or not is_its_trainer(pid, argv, run_dir):
        return RankProcess(
            rank, pid, f"pid {pid} is not this run's trainer (pid reused, or a run on another host)", other=True
        )
    fields = proc_stat_fields(pid)
    ppid = int(fields[1]) if fields and len(fields) > 1 and fields[1].isdecimal() else None
    return RankProcess(rank, pid, None, stop=process_stop(pid, fields[0] if fields else None), ppid=ppid)


def process_stop(pid: int, state: str | None) -> Stop | None:
    """How process ``pid``, in /proc state ``state``, is stopped (None: it is not): a tracer's pid from its
    /proc/PID/status (TracerPid), where this user can read it."""
    if state == SIGNAL_STOPPED:
        return Stop()
    if state != TRACE_STOPPED:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text(errors="replace")
    except OSError:
        return Stop(traced=True)
    said = next((line.split(":", 1)[1].strip() for line in status.splitlines() if line.startswith("TracerPid:")), "")
    return Stop(traced=True, tracer=int(said) if said.isdecimal() and int(said) > 0 else None)


def rank_processes(run_dir: Path) -> list[RankProcess]:
    """The current attempt's ranks (a heartbeat file that an attempt with more ranks left is not one of them)."""
    ranks = current_world_size(run_dir)
    out = []
    for rank, path in runstate.heartbeat_files(run_dir).items():
        if ranks is not None and rank >= ranks:
            continue
        rec = runstate.last_record(runstate.tail_records(path))
        written_at = to_float(rec.get("ts")) if rec else None
        out.append(check_process(rank, rec.get("pid") if rec else None, run_dir, written_at))
    return out


def _dumps(run_dir: Path) -> set[Path]:
    return set(run_dir.glob(schema.STACKDUMP_GLOB))


@dataclass(frozen=True)
class Dumps:
    files: list[Path]  # the new stack dump files
    short: str | None  # which ranks gave none and why (a rank that is not running, or did not answer); None: all did


def dump_stacks(run_dir: Path, say: Callable[[str], None], wait_s: float = DUMP_WAIT_S) -> Dumps:
    """Signal every live rank; return the new dump files and what is missing (raises when none came)."""
    if not holds_run(run_dir):  # an empty or data directory: as `nsa halt` and `nsa attach` say it (exit 3)
        raise no_run_error(run_dir, "dump")
    procs = rank_processes(run_dir)
    if not procs:
        raise UserError(f"run {run_name(run_dir)!r} has no heartbeat files yet, so no trainer pids to signal")
    targets = [p for p in procs if p.problem is None]
    for p in procs:
        if p.problem:
            say(f"rank {p.rank}: skipped, {p.problem}")
    # a stopped rank holds the signal until it runs again: said at once, not after the whole wait
    if stopped := said_stopped(targets):
        targets = [p for p in targets if p.stop is None]
        if not targets:
            raise UserError(f"no rank of run {run_name(run_dir)!r} can write its stacks: {stopped}")
        say(f"skipped: {stopped}")
    if not targets:
        raise UserError(f"no live trainer process for run {run_name(run_dir)!r}")
    before = _dumps(run_dir)
    for p in list(targets):
        assert p.pid is not None
        try:
            os.kill(p.pid, signal.SIGUSR1)
        except ProcessLookupError:  # it ended since it was checked
            say(f"rank {p.rank}: skipped, pid {p.pid} ended before it was signalled")
            targets.remove(p)
    if not targets:
        raise UserError(f"no live trainer process for run {run_name(run_dir)!r}")
    want = {p.rank for p in targets}
    deadline = time.monotonic() + wait_s
    new: list[Path] = []
    while time.monotonic() < deadline:
        new = sorted(f for f in _dumps(run_dir) - before if _size(f) > 0)
        if {_rank_of(f) for f in new} >= want:
            time.sleep(0.3)  # let the last writer finish its file
            break
        time.sleep(0.2)
    missing = want - {_rank_of(f) for f in new}
    # the signal waits until the process runs again: "no dump appeared" alone gave no clue (read again: it may have
    # been stopped while we waited)
    stopped = said_stopped([check_process(p.rank, p.pid, run_dir) for p in targets if p.rank in missing])
    why = f": {stopped}" if stopped else ""
    if not new:
        raise UserError(f"signalled ranks {sorted(want)} but no stack dump appeared within {wait_s:.0f}s{why}")
    if missing:
        say(f"no dump from rank(s) {sorted(missing)} within {wait_s:.0f}s{why}")
    got = sorted({r for f in new if (r := _rank_of(f)) is not None})
    every = sorted(p.rank for p in procs)
    short = None
    if got != every:  # a script asking for every rank's stacks must not take some of them for all
        short = f"stack dumps from rank(s) {got} of {every}; the others are said above"
    return Dumps(new, short)


def said_stopped(procs: list[RankProcess]) -> str:
    """Which of these ranks' processes are stopped and how to go on ('' when none is): a stopped rank takes no
    signal and makes no step, so a dump or a halt waits on it for nothing."""
    return stopped_ranks_text(stopped_ranks(procs))  # a process with a problem is never read as stopped


def _rank_of(path: Path) -> int | None:
    return schema.stackdump_rank(path.name)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # removed since it was listed
        return 0
