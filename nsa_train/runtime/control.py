"""Stop requests: the `.HALT` file and SIGTERM/SIGINT/SIGHUP, turned into flags the loop agrees on.

SIGHUP is a stop request too: it is what a killed tmux session (or a dropped terminal) sends, and torchrun
passes it on to its workers, then waits for them (30 s by default) before SIGKILL. Its default action would
end the process mid-step, without a checkpoint or an `end` record.

Only rank 0 looks at `.HALT`; every rank notes its own signals. The loop all-reduces
these flags once per step (see train.py), so all ranks stop after the same step. A rank
that decided alone would leave the others waiting in a collective until it times out.

A `.HALT` is stale (left by an earlier stop) only when it is older than this attempt: `nsa launch` says when
it started in $NSA_LAUNCH_TIME (launch.json records it); without it, this process's start. A newer one is a
request made while the trainer was booting (`nsa halt` at once), honoured at the first step.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from nsa_train.telemetry import schema

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)  # no SIGHUP on Windows
LAUNCH_TIME_ENV = "NSA_LAUNCH_TIME"  # seconds since the epoch, set by `nsa launch`
# /proc gives a process's start in clock ticks (10 ms) and the uptime in hundredths: a file written just
# before the process started can look up to this much newer than it
PROC_START_SLACK_S = 0.05


def proc_stat_fields(pid: int | str = "self") -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state first, then ppid, ...); None where it cannot be read.
    The name, in parentheses, may hold spaces and parentheses: split after its last ')'."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start_time(pid: int | str = "self") -> float | None:
    """When a process (this one by default) started (Linux /proc), as a wall-clock time; None elsewhere."""
    try:
        fields = proc_stat_fields(pid)
        if fields is None:
            return None
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def launch_time(environ: Mapping[str, str] | None = None) -> float | None:
    """$NSA_LAUNCH_TIME: the `nsa launch` that started this process (its launch.json's ``ts``, which names that
    launch whatever the clocks did since); None when not started by it, or for a value nsa did not write."""
    value = (os.environ if environ is None else environ).get(LAUNCH_TIME_ENV, "")
    try:
        launched = float(value)
    except ValueError:
        return None
    return launched if math.isfinite(launched) and launched > 0 else None


def attempt_start(environ: dict[str, str] | None = None) -> float:
    """Where a `.HALT` stops being stale: the launch time, else this process's start (plus the /proc slack),
    else now."""
    launched = launch_time(environ)
    if launched is not None:
        return launched
    started = process_start_time()
    return started + PROC_START_SLACK_S if started is not None else time.time()


class StoppedAtStart(BaseException):
    """A stop signal before the training loop: nothing is trained yet to finish or save, so the start ends at once
    (a flag only the loop reads left a hung data source or a long replay running until a second signal). A
    BaseException, as KeyboardInterrupt is: the `except Exception` of a data or checkpoint reader on the start's
    path would take it for that reader's error (exit 2, `crashed`)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(f"signal {signal_name} during start-up: stopped before training")
        self.signal_name = signal_name


class StopRequests:
    def __init__(self, run_dir: Path, is_main: bool, started_at: float | None = None) -> None:
        self.halt_path = Path(run_dir) / schema.HALT_FILE
        self.is_main = is_main
        self.started_at = attempt_start() if started_at is None else started_at
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}
        # until the loop's first batch, a signal ends the start (StoppedAtStart); from then on, and while the run
        # shuts down, it is a flag the ranks agree on, so that all of them stop after the same step with a checkpoint
        self.starting = True

    def install_signal_handlers(self) -> None:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def restore_signal_handlers(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name is not None:
            # a second signal means "now": fall back to the default action
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        self.signal_name = signal.Signals(signum).name
        if self.starting:
            raise StoppedAtStart(self.signal_name)

    def remove_stale_halt(self) -> bool:
        """Rank 0 at start: a `.HALT` left from an earlier stop must not stop this run at step 1; one written
        since this attempt started is a request, kept for the loop to honour."""
        if not self.is_main:
            return False
        try:
            written = self.halt_path.stat().st_mtime
        except OSError:
            return False
        if written >= self.started_at:
            return False
        self.halt_path.unlink(missing_ok=True)
        return True

    def moved_to(self, run_dir: Path) -> None:
        """The run directory was renamed: `.HALT` is looked for where it went."""
        self.halt_path = Path(run_dir) / schema.HALT_FILE

    def halt_requested(self) -> bool:
        return self.is_main and self.halt_path.exists()

    def remove_halt(self) -> None:
        if self.is_main:
            self.halt_path.unlink(missing_ok=True)

    @property
    def signalled(self) -> bool:
        return self.signal_name is not None

    @property
    def exit_signal(self) -> int:
        return int(getattr(signal, self.signal_name)) if self.signal_name else 0
