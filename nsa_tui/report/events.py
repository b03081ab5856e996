"""What happened during a run, from the records its directory holds: stalls and their stack dumps, errors, the
trainer's anomaly marker, resumes (and refused ones), halts and how each attempt ended.

The alerts judge the run as it is now, so a run that stalled for minutes and was then halted read "No health rule
fired" in its report, which never named the stall record or its dump. These are the report's Events.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import PurePath

from nsa_train.telemetry import schema
from nsa_tui.fmt import duration
from nsa_tui.report.load import fresh_start
from nsa_tui.runs import RunHistory
from nsa_tui.runs.history import Event

# the most rows one run gives (the newest kept): a run that crash-looped must not bury the report
MAX_EVENT_ROWS = 50

END_SAID = {
    schema.END_COMPLETED: "completed",
    schema.END_HALT: "halted",
    schema.END_SIGNAL: "stopped by a signal",
    schema.END_ERROR: "ended by an error",
    schema.END_NAN: "ended by a NaN loss",
}


@dataclass(frozen=True)
class RunEvent:
    ts: float | None  # None: known only by a file (the anomaly marker)
    step: int | None
    rank: int | None
    what: str
    detail: str


def _train_starts(h: RunHistory) -> tuple[list[float], list[int | None]]:
    """Rank 0's `train` phase records in time order: (their times, the start_step each gives)."""
    trains = sorted(
        (
            e
            for e in h.events
            if e.kind == schema.KIND_PHASE
            and e.rank in (0, None)
            and e.fields.get("phase") == schema.PHASE_TRAIN
            and e.ts is not None
        ),
        key=lambda e: e.ts or 0.0,
    )
    steps = [
        s if isinstance(s := e.fields.get("start_step"), int) and not isinstance(s, bool) else None for e in trains
    ]
    return [e.ts or 0.0 for e in trains], steps


def _boots(h: RunHistory) -> list[RunEvent]:
    """Every start after the first: a resume (from which step), or a fresh start over the run (--force)."""
    boots = sorted(
        (e for e in h.events if e.kind == schema.KIND_BOOT and e.rank in (0, None) and e.ts is not None),
        key=lambda e: e.ts or 0.0,
    )
    times, starts = _train_starts(h)
    out = []
    for i, boot in enumerate(boots[1:], start=1):
        until = (boots[i + 1].ts or 0.0) if i + 1 < len(boots) else float("inf")
        if fresh_start(boot):
            out.append(RunEvent(boot.ts, boot.step, boot.rank, "fresh start", "a new run from step 0 (--force)"))
            continue
        j = bisect_left(times, boot.ts or 0.0)  # its `train` record: the first after its boot, before the next
        start = starts[j] if j < len(times) and times[j] < until else None
        said = f"from step {start}" if start is not None else "before its loop started"
        # the step it continued from: its boot record says 0 (the checkpoint is not loaded yet)
        out.append(RunEvent(boot.ts, start, boot.rank, "resume", said))
    return out


def _dump_name(path: object) -> str | None:
    return PurePath(path).name if isinstance(path, str) and path else None


def _clock(ts: float, since: float) -> str:
    """A UTC time as the Events table gives times: the date too when it is not the day of ``since``."""
    same_day = time.gmtime(ts)[:3] == time.gmtime(since)[:3]
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _stall_end(h: RunHistory, stall: Event) -> tuple[float, str] | None:
    """When the hang ``stall`` reports ended, and how the run said so: its rank's next record of a later step
    (progress or liveness), else the end record that followed it; None when no record says (it may hang still, or
    its process died unrecorded: a later start's boot is no end of the hang)."""
    since = stall.ts or 0.0
    stepped = h.stall_ends.progress_after(stall.rank, stall.ts)
    later = sorted(
        (
            e
            for e in h.events
            if e.kind in (schema.KIND_END, schema.KIND_BOOT)
            and e.rank in (stall.rank, 0, None)
            and e.ts is not None
            and e.ts >= since
            and (stepped is None or e.ts < stepped)
        ),
        key=lambda e: e.ts or 0.0,
    )
    if later:  # its end record, or a new start first: when the hang ended is then not known
        return (later[0].ts or 0.0, "until the run ended") if later[0].kind == schema.KIND_END else None
    return (stepped, f"progress again at {_clock(stepped, since)}") if stepped is not None else None


def _stall_said(h: RunHistory, stall: Event) -> str:
    """How long the hang lasted, from its last progress (the stall record's time less its quiet seconds) to the
    record that ended it; the watchdog's threshold alone where no later record says."""
    secs = stall.fields.get("seconds_since_progress")
    quiet = float(secs) if isinstance(secs, int | float) and not isinstance(secs, bool) else None
    watchdog = f"no progress for {quiet:.0f} s" if quiet is not None else "no progress"
    ended = _stall_end(h, stall) if stall.ts is not None else None
    if ended is None:
        return f"{watchdog} (the trainer's watchdog)"
    at, how = ended
    lasted = at - (stall.ts or 0.0) + (quiet or 0.0)
    return f"stalled for ~{duration(round(lasted))} ({how}); the trainer's watchdog saw {watchdog}"


def run_events(h: RunHistory) -> list[RunEvent]:
    """The run's events in time order (those without a time last), at most MAX_EVENT_ROWS (the newest)."""
    rows = _boots(h)
    named_dumps: set[str] = set()
    for e in h.events:
        if e.kind == schema.KIND_STALL:
            dump = _dump_name(e.fields.get("dump"))
            if dump:
                named_dumps.add(dump)
            stacks = f"; stacks in {dump}" if dump else ""
            rows.append(RunEvent(e.ts, e.step, e.rank, "stall", f"{_stall_said(h, e)}{stacks}"))
        elif e.kind == schema.KIND_ERROR:
            message = e.fields.get("message")
            rows.append(RunEvent(e.ts, e.step, e.rank, "error", str(message) if message else "(no message)"))
        elif e.kind == schema.KIND_END and e.rank in (0, None):
            if e.fields.get(schema.RESUME_REFUSED):
                said = "before its checkpoint loaded: the run is as its last attempt left it"
                rows.append(RunEvent(e.ts, e.step, e.rank, "resume refused", said))
                continue
            reason, status = e.fields.get("reason"), e.fields.get("exit_status")
            what = END_SAID.get(reason, f"ended ({reason})") if isinstance(reason, str) else "ended"
            rows.append(RunEvent(e.ts, e.step, e.rank, what, f"exit status {status}" if status is not None else ""))
    for name in h.stackdumps:  # the dumps no stall names: asked for (SIGUSR1, `nsa dump`)
        if name not in named_dumps:
            rows.append(RunEvent(schema.stackdump_ts(name), None, schema.stackdump_rank(name), "stack dump", name))
    if h.anomaly:
        rows.append(RunEvent(None, None, None, "anomaly", f"the trainer marked the run: {h.anomaly}"))
    rows.sort(key=lambda r: (r.ts is None, r.ts or 0.0))
    return rows[-MAX_EVENT_ROWS:] if len(rows) > MAX_EVENT_ROWS else rows
