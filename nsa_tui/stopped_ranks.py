"""A rank's process that is stopped, and how every tool says it (rule rank_stopped, `nsa dump`, `nsa halt`).

Two states stop a process, and they are resumed differently (/proc/PID/stat's state): `T`, a stop signal (SIGSTOP,
or ctrl-z where a shell runs the trainer, `just train`), which `kill -CONT` ends; `t`, a tracing stop (a debugger
such as gdb or py-spy at a breakpoint, strace), which SIGCONT does not end: the tracer holds it until it detaches or
continues it. Standard library only.

Ctrl-z does not stop a run `nsa launch` started: tmux execs its wrapper with no shell, so the wrapper, torchrun and
the ranks are a process group without a job-control shell (an orphaned one), and the kernel discards the terminal's
SIGTSTP there (`^Z` is echoed, training goes on). Only SIGSTOP stops it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from typing import NamedTuple

# what stops a process by a signal: ctrl-z only where a shell runs the trainer (not in a launched run's pane, above)
SIGNAL_STOP = "SIGSTOP, or ctrl-z where a shell runs the trainer"
MAX_NAMED = 4  # ranks named one by one in a message (as launcher_gone names them); the rest counted


class Stop(NamedTuple):
    """How a process is stopped."""

    traced: bool = False  # state t: held by a debugger or tracer; else state T, a stop signal
    tracer: int | None = None  # the tracer's pid (/proc/PID/status TracerPid), where it could be read


class StoppedRank(NamedTuple):
    """A live rank of this run whose process is stopped: rank_stopped's facts."""

    rank: int
    pid: int
    stop: Stop = Stop()
    host: str | None = None  # the host its pid is on, as reached over ssh (`--host HOST`); None: this machine


def _named(ranks: Sequence[StoppedRank]) -> str:
    def one(r: StoppedRank) -> str:
        by = f", traced by pid {r.stop.tracer}" if r.stop.tracer is not None else ""
        return f"rank {r.rank} (pid {r.pid}{by})"

    named = ", ".join(one(r) for r in ranks[:MAX_NAMED])
    more = len(ranks) - MAX_NAMED
    return named + (f" and {more} more" if more > 0 else "") + (" is" if len(ranks) == 1 else " are")


def _resume_command(pids: str, host: str | None) -> str:
    """`kill -CONT PIDS`, run on ``host`` through ssh as the other --host hints are (`ssh HOST 'tmux ...'`): the pids
    are that host's."""
    kill = f"kill -CONT {pids}"
    return shlex.join(["ssh", host, kill]) if host else kill


_RESUME_HERE = re.compile(r"`kill -CONT ([0-9]+(?: [0-9]+)*)`")


def resumed_over_ssh(text: str, host: str) -> str:
    """A host's own words (its nsa's verdicts, `nsa dump` or `nsa halt` there) as said here: its `kill -CONT PIDS`
    run through ssh on that host, where the pids are."""
    return _RESUME_HERE.sub(lambda m: f"`{_resume_command(m.group(1), host)}`", text)


def stopped_ranks_text(ranks: Sequence[StoppedRank]) -> str:
    """``ranks`` and how to go on ('' for none): one wording for `nsa status`, the dashboard, `nsa dump` and
    `nsa halt`. A traced rank is not sent to `kill -CONT`, which does not resume it; a rank on another host is
    resumed through ssh (its ``host``: they come from one host's listing)."""
    signalled = [r for r in ranks if not r.stop.traced]
    traced = [r for r in ranks if r.stop.traced]
    said = []
    if signalled:
        pids = " ".join(str(r.pid) for r in signalled)
        resume = _resume_command(pids, signalled[0].host)
        said.append(f"{_named(signalled)} stopped ({SIGNAL_STOP}); `{resume}` resumes")
    if traced:
        it = "it" if len(traced) == 1 else "them"
        said.append(
            f"{_named(traced)} stopped by a debugger or tracer (gdb, strace, py-spy): `kill -CONT` does not resume "
            f"{it}; the tracer must let {it} go (detach, or continue in the debugger)"
        )
    return "; ".join(said)
