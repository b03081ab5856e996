"""The process tmux runs: torchrun with its output copied to console.log, and its
exit status written to ``exit_status`` however it ends.

``python -P -m nsa_tui.launch.runner RUN_DIR`` reads the command and environment from
RUN_DIR/launch.json, so what launch.json records is exactly what ran: of the variables
nsa hands on (command.is_passthrough), the trainer gets the recorded ones only. The rest
of its environment is the tmux server's, which an earlier launch started with its own
caller's variables (`CUDA_VISIBLE_DEVICES=0 nsa launch` once, and every later run had it). A shell
pipeline through ``tee`` would report tee's status instead of torchrun's; this
wrapper waits for torchrun itself. A signal that kills torchrun is recorded as
128+N, as a shell would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import BinaryIO

from nsa_train.runtime.run_dir_moves import FollowedRunDir, RunDirLost
from nsa_train.telemetry import schema
from nsa_train.telemetry.atomic import write_text_atomic
from nsa_train.telemetry.writer import ends_mid_line
from nsa_tui.fmt import exit_status_said
from nsa_tui.health.console_tail import TorchrunFailure, rank_console_error, torchrun_failures
from nsa_tui.health.stop_signal import stop_signal
from nsa_tui.launch import runstate
from nsa_tui.launch.command import is_passthrough

EXIT_NOT_STARTED = 127
REPORT_BYTES = 64 * 1024  # torchrun's failure report is ~2 KiB, ~1 KiB more per failed worker


def write_exit_status(run_dir: Path, code: int) -> bool:
    """Atomic, so a reader never sees an empty file. False when it cannot be written (a full disk): the tools then
    judge the run by its records and its pids."""
    try:
        write_text_atomic(run_dir / schema.EXIT_STATUS, f"{code}\n")
    except OSError:
        return False
    return True


class _Mirror:
    """Copies bytes to console.log and, while the tmux pane exists, to the terminal. A console.log that can no
    longer be written (a full disk, the way such a run ends) stops the copy, never the wrapper: it must go on
    reading torchrun's output (a full pipe would block it) and record its real exit status."""

    def __init__(self, log_path: Path) -> None:
        # a line cut by the previous launch (a full disk) ends before this one's first: its `starting:` line must
        # begin a line, where the readers look for it
        self.torn = ends_mid_line(log_path)
        self.log: BinaryIO | None = log_path.open("ab", buffering=0)
        self.tty_ok = True

    def write(self, data: bytes) -> None:
        if self.log is not None:
            try:
                self.log.write(b"\n" + data if self.torn else data)
                self.torn = False
            except OSError as e:
                self.log = None
                self._tty(f"[nsa] cannot write console.log any more ({e.strerror or e}): this pane only\n".encode())
        self._tty(data)

    def _tty(self, data: bytes) -> None:
        if self.tty_ok:
            try:
                os.write(sys.stdout.fileno(), data)
            except OSError:  # the pane was closed (session killed): keep logging
                self.tty_ok = False

    def note(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.write(f"[nsa {stamp}] {text}\n".encode())


def run(run_dir: Path) -> int:
    spec = json.loads((run_dir / schema.LAUNCH_JSON).read_text())
    argv: list[str] = spec["argv"]
    env = {**trainer_base_env(os.environ, spec["env"]), **spec["env"]}
    mirror = _Mirror(run_dir / schema.CONSOLE_LOG)
    where = FollowedRunDir(run_dir)  # renamed while it runs, the trainer trains on there: so does the status
    started = time.time()
    mirror.note(f"starting: {spec.get('command', ' '.join(argv))}")

    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            mirror.tty_ok = False
        if child is not None and child.poll() is None:
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, forward)
    # Ctrl-C in an attached pane reaches torchrun directly (same process group);
    # the wrapper must outlive it to record the status. A no-op handler, not
    # SIG_IGN: an ignored signal would stay ignored in torchrun after exec.
    signal.signal(signal.SIGINT, lambda _signum, _frame: None)
    # SIGUSR1 asks a trainer rank for its stacks (`nsa dump`), but `kill -USR1` or `pkill -USR1 -f nsa_train.train`
    # also reaches torchrun (and this wrapper), whose default action is to die, leaving the ranks unsupervised.
    # SIG_IGN on purpose: it survives exec into torchrun and on into the ranks, whose dumper sets its own handler.
    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)

    try:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            restore_signals=True,
        )
    except OSError as e:
        mirror.note(f"could not start {argv[0]}: {e.strerror or e}")
        write_exit_status(run_dir, EXIT_NOT_STARTED)
        return EXIT_NOT_STARTED

    assert child.stdout is not None
    fd = child.stdout.fileno()
    recent = b""  # the output's end: torchrun's failure report, which names a rank that was killed
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        mirror.write(data)
        recent = (recent + data)[-REPORT_BYTES:]
    rc = child.wait()
    code = rc if rc >= 0 else 128 - rc
    run_dir = _where_now(where)
    if _superseded(run_dir, spec):
        # `nsa launch --force` started another attempt here while this one was stopping: its exit_status and its
        # console lines are the new attempt's to write (this one's read `crashed` on a run that was training)
        return code
    stopped_by = graceful_stop(run_dir, since=started) if code != 0 else None
    if code != 0 and stopped_by is None:
        # torchrun ends a failure with its own traceback; restate the trainer's error last,
        # where `tail console.log` and `nsa status` look.
        lines = recent.decode("utf-8", errors="replace").splitlines()
        for line in trainer_errors(run_dir, since=started, failures=torchrun_failures(lines), console=lines):
            mirror.note(line)
    # a stop signal ends every rank the way a halt does (its checkpoint saved, `nsa status`: halted, health OK), but
    # torchrun exits 1 after it (a rank's 128 + N is a failure to it; a hang-up of its own ends it with a traceback):
    # recorded as the halt's 0, which is what a script testing exit_status should see of a stop that lost nothing
    recorded = 0 if stopped_by is not None else code
    if not write_exit_status(run_dir, recorded):
        mirror.note(f"could not write {schema.EXIT_STATUS} (a full disk?)")
    said = f"torchrun exited with status {exit_status_said(code)}"
    if stopped_by is not None:
        said += f"; {GRACEFUL_STOP_SAID.format(by=stopped_by)}"
    mirror.note(said)
    return recorded


# the wrapper's words for a launch whose ranks all stopped on a signal or a halt, after torchrun's status
GRACEFUL_STOP_SAID = f"{schema.EXIT_STATUS} 0, as for a halt: every rank stopped on {{by}}"
STOP_REASONS = (schema.END_SIGNAL, schema.END_HALT)


def graceful_stop(run_dir: Path, since: float) -> str | None:
    """What stopped this launch when every rank of it (rank 0's boot says how many) wrote an end record of reason
    `signal` or `halt`: the signal ('SIGHUP'; stop_signal's UNNAMED when no rank names it), else 'a halt' (one that
    a hang-up reached torchrun during); None when a rank did not (a crash, a rank killed before its end record)."""
    by_rank, world = _launch_records(run_dir, since)
    ends = [runstate.last_record(by_rank.get(r, []), schema.KIND_END) for r in range(world or 0)]
    if not ends or any(e is None or e.get("reason") not in STOP_REASONS for e in ends):
        return None
    return stop_signal([e for e in ends if e is not None]) or "a halt"


def _launch_records(run_dir: Path, since: float) -> tuple[dict[int, list[dict]], int | None]:
    """Each rank's heartbeat records written since this launch started, and how many ranks it has (rank 0's boot
    record; None before it)."""
    by_rank: dict[int, list[dict]] = {}
    world: int | None = None
    for rank, path in runstate.heartbeat_files(run_dir).items():
        recs = [r for r in runstate.tail_records(path) if isinstance(r.get("ts"), (int, float)) and r["ts"] >= since]
        if not recs:
            continue  # a rank an earlier launch had: its file stays
        by_rank[rank] = recs
        boot = runstate.last_record(recs, schema.KIND_BOOT) if rank == 0 else None
        n = schema.world_size_of(boot) if boot is not None else None
        if n is not None:
            world = n
    return by_rank, world


def _where_now(where: FollowedRunDir) -> Path:
    """The run directory's path now (the trainer said a rename in console.log, which went with it); its old path
    when it was deleted (exit_status then cannot be written, and the note says so)."""
    try:
        where.follow()
    except RunDirLost:
        pass
    return where.path


def _superseded(run_dir: Path, spec: dict) -> bool:
    """launch.json is no longer the one this wrapper started from (a newer launch's ``ts``)."""
    newest = runstate.read_launch_json(run_dir)
    return newest is not None and newest.get("ts") != spec.get("ts")


# What the trainer reads that nsa launch decides on its command line: `--config` is always given, so a CONFIG
# left in the tmux server's environment by an earlier launch could only disagree with it (and fail the run).
DECIDED_BY_COMMAND = ("CONFIG",)


def trainer_base_env(environ: Mapping[str, str], recorded: dict[str, str]) -> dict[str, str]:
    """``environ`` without the variables nsa would have recorded had the caller had them, and without those its
    command line decides."""
    return {
        k: v for k, v in environ.items() if k not in DECIDED_BY_COMMAND and (k in recorded or not is_passthrough(k))
    }


def trainer_errors(
    run_dir: Path,
    since: float,
    max_ranks: int = 4,
    failures: list[TorchrunFailure] | None = None,
    console: list[str] | None = None,
) -> list[str]:
    """What the trainer's ranks said since this launch started: each rank's last `error` record, the first
    written first (under DDP the first is the cause, the others' say they lost their peer), then the ranks of this
    launch (rank 0's boot says how many) that wrote no `end` record: killed (SIGKILL, the OOM killer), which no
    error record of theirs can say; ``failures`` (torchrun's report) says how they exited. Such a rank's own error
    line in ``console`` (its heartbeat unwritable: a full disk) comes first: the others' errors follow from it."""
    errors: list[tuple[float, str]] = []
    errored: set[int] = set()
    ended: set[int] = set()
    last: dict[int, dict] = {}
    by_rank, world = _launch_records(run_dir, since)
    for rank, recs in by_rank.items():
        last[rank] = recs[-1]
        rec = runstate.last_record(recs, schema.KIND_ERROR)
        if rec is not None:
            errors.append((rec["ts"], f"rank {rank} error at step {rec.get('step')}: {rec.get('message')}"))
            errored.add(rank)
        if runstate.last_record(recs, schema.KIND_END) is not None:
            ended.add(rank)
    out = [line for _, line in sorted(errors, key=lambda e: e[0])]
    lost = [r for r in range(world or 0) if r not in ended]
    unrecorded = []
    for r in lost:
        if r not in errored and (said := rank_console_error(console or [], r)) is not None:
            when = f"after step {last[r].get('step')}" if r in last else "at step ?"
            unrecorded.append(f"rank {r} error {when} (its console line; its heartbeat has no error record): {said}")
    out = (unrecorded + out)[:max_ranks]
    for r in lost[:max_ranks]:
        step = last[r].get("step") if r in last else None
        heard = f"its last record at step {step}" if r in last else "no record from it"
        how = next((f for f in failures or [] if f.rank == r and f.exitcode is not None), None)
        if how is None:
            said = "killed? torchrun's report above says how"
        elif how.exitcode is not None and how.exitcode > 0:  # an exit, not a signal: its end record failed
            said = f"torchrun: {how.describe()}, an exit with status {how.exitcode}, not a kill"
        else:
            said = f"torchrun: {how.describe()}"
        out.append(f"rank {r} wrote no end record ({heard}): {said}")
    return out


def main(args: list[str] | None = None) -> int:
    args = sys.argv[1:] if args is None else args
    if len(args) != 1:
        print("usage: python -P -m nsa_tui.launch.runner RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(args[0])
    try:
        return run(run_dir)
    except Exception as e:  # the status must exist whatever happened
        said = f"[nsa] launcher failed: {type(e).__name__}: {e}\n"
        try:
            with (run_dir / schema.CONSOLE_LOG).open("a") as log:
                log.write(said)
        except OSError:
            print(said, end="", file=sys.stderr)
        write_exit_status(run_dir, EXIT_NOT_STARTED)
        return EXIT_NOT_STARTED


if __name__ == "__main__":
    sys.exit(main())
