"""`nsa halt`: ask a run to stop cleanly (.HALT), wait for its `end` record, report the checkpoint.

The trainer polls .HALT between steps; every rank stops after the current step,
rank 0 saves a checkpoint and writes `end` with reason `halt`.

What counts is the current attempt, the one launch.json records: an `end` written before that
launch (the run halted, then `--resume` or `--force` started it again) does not mean the run is
over. A launched run whose tmux session is gone without an exit status (killed, or the machine
rebooted) is not running: said at once, not after the whole wait.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nsa_train.telemetry import schema
from nsa_train.telemetry.pointers import read_pointer
from nsa_tui.errors import UserError
from nsa_tui.fmt import exit_status_said
from nsa_tui.health.stop_signal import halt_was_requested, stop_signal
from nsa_tui.launch import runstate, tmux
from nsa_tui.rundir import holds_run, no_run_error, run_name

# `nsa halt`'s line for a run that had ended before it (commands/halt.py says it); the dashboard's `h` on a host reads
# the reason back from the host's nsa
ALREADY_ENDED = "run {name!r} had already ended (reason {reason}, step {step}); nothing to halt"
_ALREADY_ENDED_SAID = re.compile(r"^run .* had already ended \(reason ([^,)]*), step .*\); nothing to halt$", re.M)

POLL_S = 0.5
LIVENESS_EVERY_S = 5.0  # how often the wait asks tmux whether the run's session is still there
EXIT_GRACE_S = 60.0  # after the end record: time for torchrun to exit and the wrapper to record it
# stopped on purpose with a checkpoint: a signal (SIGTERM, SIGHUP of a killed tmux session) stops the trainer the way
# .HALT does, and `nsa status` calls such a run halted, health OK
CLEAN_REASONS = (schema.END_HALT, schema.END_COMPLETED, schema.END_SIGNAL)


@dataclass(frozen=True)
class HaltOutcome:
    reason: str
    step: int | None
    checkpoint: Path | None
    exit_status: int | None
    already_ended: bool = False  # the run had ended before this halt; nothing was created
    # the run ended by a signal, not by a halt (a killed tmux server's SIGHUP), before this halt or while it waited:
    # which one (nsa_tui.health.stop_signal; UNNAMED when no rank names it); None otherwise
    stop_signal: str | None = None
    halt_overtaken: bool = False  # with stop_signal: a halt had been requested before it (an earlier `nsa halt`)


def latest_checkpoint(run_dir: Path, records: list[dict]) -> Path | None:
    """The newest `checkpoint` record's path, else the checkpoints/latest pointer."""
    rec = runstate.last_record(records, schema.KIND_CHECKPOINT)
    if rec is not None and isinstance(rec.get("path"), str) and rec["path"]:
        p = Path(rec["path"])
        # a relative path (trainers before the record was made absolute) was relative to the trainer's cwd,
        # which the record does not say; checkpoints always sit in the run's checkpoints/ directory. An absolute one
        # names the original's file in a copied run directory: the file of that name here goes first
        here = run_dir / schema.CHECKPOINT_DIR / p.name
        return p if p.is_absolute() and not here.exists() else here
    # the name it holds, whether or not that file is still here; a damaged pointer names no checkpoint
    name = read_pointer(run_dir / schema.CHECKPOINT_DIR, schema.LATEST_POINTER).name
    return run_dir / schema.CHECKPOINT_DIR / name if name is not None else None


def already_ended_reason(said: str) -> str | None:
    """The end reason in `nsa halt`'s output for a run that had already ended; None when it said otherwise."""
    m = _ALREADY_ENDED_SAID.search(said)
    return m.group(1) if m else None


def request_halt(run_dir: Path) -> Path:
    halt = run_dir / schema.HALT_FILE
    try:
        halt.write_text(f"halt requested by nsa halt on {socket.gethostname()} (pid {os.getpid()}) at {time.ctime()}\n")
    except OSError as e:  # another user's run, a read-only mount, a full disk: nothing was asked
        raise UserError(
            f"cannot create {os.path.abspath(halt)} ({e.strerror or e}): the run was not asked to stop; as its owner, "
            f"`touch {os.path.abspath(halt)}` does the same"
        ) from None
    return halt


def secs(s: float) -> str:
    """A wait as said: '600s', but '0.3s' (not '0s', which reads as --wait 0: no wait at all)."""
    return f"{s:.0f}s" if s >= 10 else f"{s:.1f}".rstrip("0").rstrip(".") + "s"


def _launch_time(launch: dict | None) -> float | None:
    ts = launch.get("ts") if launch else None
    return float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None


def _gone(run_dir: Path, launch: dict | None) -> bool:
    """The run's process is gone: its tmux session is not there, no exit status was recorded, and no rank's pid is
    alive (a trainer can outlive its session, or live on a server this shell cannot see: status counts it alive)."""
    from nsa_tui.launch.dump import rank_processes

    if launch is None:  # started by hand: no session, no exit status; its ranks' pids, when it ran here
        return runstate.run_host(run_dir) == socket.gethostname() and not any(
            p.problem is None for p in rank_processes(run_dir)
        )
    if session_alive(run_dir, launch) is not False or runstate.read_exit_status(run_dir) is not None:
        return False

    return not any(p.problem is None for p in rank_processes(run_dir))


def session_alive(run_dir: Path, launch: dict | None) -> bool | None:
    """Whether the tmux session launch.json records is there (on its recorded server); None when that
    cannot be told here: no launch.json, a run launched on another host, no tmux."""
    if not launch or launch.get("host") != socket.gethostname() or shutil.which("tmux") is None:
        return None
    return tmux.has_session(_session(run_dir, launch), tmux.recorded_socket(launch))


def _session(run_dir: Path, launch: dict) -> str:
    session = launch.get("tmux_session")
    return session if isinstance(session, str) and session else tmux.session_name(run_name(run_dir))


def _not_running(run_dir: Path, launch: dict | None) -> UserError:
    why = (
        f"its tmux session {_session(run_dir, launch)} is gone and the launcher recorded no exit status"
        if launch
        else "no process of its trainer is alive on this machine, and it wrote no end record"
    )
    return UserError(
        f"run {run_name(run_dir)!r} is not running: {why} (killed, or the machine rebooted); nothing to halt. "
        f"See `nsa status {run_dir}`; continue it with `nsa launch --run-dir {run_dir} --resume`"
    )


def halt_run(run_dir: Path, wait_s: float, say: Callable[[str], None]) -> HaltOutcome | None:
    """Create .HALT and wait up to wait_s for the end record (None when wait_s is 0)."""
    if not holds_run(run_dir):
        # no trainer would ever read a .HALT here: it would stay behind, and the wait would run out
        raise no_run_error(run_dir, "halt")
    launch = runstate.read_launch_json(run_dir)
    if launch is not None and not runstate.launched_here(run_dir, launch):
        # a `cp -r` copy of a live run: its launch.json names the original's session, which made the copy look live
        # (a .HALT written where no trainer reads it, and a wait for nothing); its own processes decide, as for a
        # run started by hand
        launch = None
    launched = _launch_time(launch)
    before = runstate.heartbeat_state(run_dir)
    # an end from before the launch is an earlier attempt's (the one --resume or --force follows)
    if before.ended and (launched is None or _at_or_after(before.end_record or {}, launched)):
        end = before.end_record or {}
        records = runstate.rank0_records(run_dir)
        status = runstate.read_exit_status(run_dir)
        checkpoint = latest_checkpoint(run_dir, records)
        ends = runstate.attempt_end_records(run_dir, end, launched)
        stopped_by = stop_signal(ends)
        overtaken = stopped_by is not None and halt_was_requested(ends, _mtime(run_dir / schema.HALT_FILE))
        return HaltOutcome(str(end.get("reason")), end.get("step"), checkpoint, status, True, stopped_by, overtaken)
    status = runstate.read_exit_status(run_dir)
    if status is not None:
        raise UserError(
            f"run {run_name(run_dir)!r} is not running: the launcher exited with status {exit_status_said(status)}; "
            "nothing to halt"
        )
    if _gone(run_dir, launch):
        raise _not_running(run_dir, launch)
    requested = time.time()
    request_halt(run_dir)
    if wait_s <= 0:
        say(f"created {run_dir / schema.HALT_FILE}; every rank stops after its current step")
        return None
    say(f"created {schema.HALT_FILE}; waiting up to {secs(wait_s)} for run {run_name(run_dir)!r} to save and stop ...")
    deadline = time.monotonic() + wait_s
    asked_again = False
    next_liveness = time.monotonic() + LIVENESS_EVERY_S
    while time.monotonic() < deadline:
        records = runstate.rank0_records(run_dir)
        end = runstate.last_record(records, schema.KIND_END)
        # A resumed run's heartbeat still holds the end record of its earlier segment: only an
        # end written after this request answers it.
        if end is not None and _at_or_after(end, requested):
            return _finish(run_dir, end, records, deadline, launched)
        status = runstate.read_exit_status(run_dir)
        if status is not None:
            raise UserError(
                f"the trainer exited with status {exit_status_said(status)} without an end record; see "
                f"{run_dir / schema.CONSOLE_LOG}"
            )
        if time.monotonic() >= next_liveness:
            next_liveness = time.monotonic() + LIVENESS_EVERY_S
            # the wrapper writes the exit status before its session closes: gone without one is a dead run
            if _gone(run_dir, launch):
                end = runstate.last_record(runstate.rank0_records(run_dir), schema.KIND_END)
                if end is None or not _at_or_after(end, requested):
                    (run_dir / schema.HALT_FILE).unlink(missing_ok=True)  # no stop for a later --resume to find
                    raise _not_running(run_dir, launch)
        if not asked_again and _removed_as_stale(run_dir, records, requested):
            asked_again = True  # only once: later the trainer removes it because it is halting
            request_halt(run_dir)
            say(f"the trainer was still booting and removed {schema.HALT_FILE} as stale; created it again")
        time.sleep(POLL_S)
    from nsa_tui.launch.dump import rank_processes, said_stopped

    if stopped := said_stopped(rank_processes(run_dir)):  # no step comes from a stopped rank: say so, not "slow"
        raise UserError(
            f"no end record after {secs(wait_s)}: {stopped}, and the run stops after the step it is waiting on; "
            f"{schema.HALT_FILE} stays in place"
        )
    raise UserError(
        f"no end record after {secs(wait_s)}; {schema.HALT_FILE} stays in place and the trainer stops after its "
        f"current step (a slow step, evaluation or checkpoint can delay it). Check with `nsa status {run_dir}`."
    )


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _at_or_after(record: dict, ts: float) -> bool:
    return isinstance(record.get("ts"), (int, float)) and record["ts"] >= ts


def _removed_as_stale(run_dir: Path, records: list[dict], requested: float) -> bool:
    """The trainer clears a .HALT older than its attempt just before its `train` phase, and says so in that
    phase's warnings; when that phase began after our request, the file it cleared was ours (a trainer not
    started by `nsa launch` may date its attempt from a clock a little off). A .HALT gone without that
    warning was taken as a request: the trainer is stopping, and must not find another one after it."""
    if (run_dir / schema.HALT_FILE).exists():
        return False
    phases = (r for r in reversed(records) if r.get("kind") == schema.KIND_PHASE)
    train = next((r for r in phases if r.get("phase") == schema.PHASE_TRAIN), None)
    if train is None or not _at_or_after(train, requested):
        return False
    if isinstance(removed := train.get(schema.STALE_HALT_REMOVED), bool):
        return removed
    warnings = train.get("warnings")  # a trainer before that field: its warning's words
    return isinstance(warnings, list) and any(
        isinstance(w, str) and schema.HALT_FILE in w and "stale" in w for w in warnings
    )


def _finish(run_dir: Path, end: dict, records: list[dict], deadline: float, launched: float | None) -> HaltOutcome:
    # The end record comes before torchrun exits; give the wrapper time to record the status. Only
    # `nsa launch`'s wrapper writes one: a run started by hand has none to wait for.
    exit_deadline = min(time.monotonic() + EXIT_GRACE_S, max(deadline, time.monotonic() + 5))
    status = runstate.read_exit_status(run_dir)
    while status is None and time.monotonic() < exit_deadline and (run_dir / schema.LAUNCH_JSON).is_file():
        time.sleep(POLL_S)
        status = runstate.read_exit_status(run_dir)
    # a signal (a killed tmux server's SIGHUP) that stopped the run before the halt did: which one
    stopped_by = stop_signal(runstate.attempt_end_records(run_dir, end, launched))
    checkpoint = latest_checkpoint(run_dir, records)
    return HaltOutcome(str(end.get("reason")), end.get("step"), checkpoint, status, stop_signal=stopped_by)
