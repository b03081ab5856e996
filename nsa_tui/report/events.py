"""What happened during a run, from the records its directory holds: stalls and their stack dumps, errors, the
trainer's anomaly marker, resumes (and refused ones), halts and how each attempt ended.

The alerts judge the run as it is now, so a run that stalled for minutes and was then halted read "No health rule
fired" in its report, which never named the stall record or its dump. These are the report's Events.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from pathlib import PurePath

from nsa_train.telemetry import schema
from nsa_tui.report.load import fresh_start
from nsa_tui.runs import RunHistory

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


def run_events(h: RunHistory) -> list[RunEvent]:
    """The run's events in time order (those without a time last), at most MAX_EVENT_ROWS (the newest)."""
    rows = _boots(h)
    named_dumps: set[str] = set()
    for e in h.events:
        if e.kind == schema.KIND_STALL:
            secs = e.fields.get("seconds_since_progress")
            quiet = f"no progress for {secs:.0f} s" if isinstance(secs, int | float) else "no progress"
            dump = _dump_name(e.fields.get("dump"))
            if dump:
                named_dumps.add(dump)
            stacks = f"; stacks in {dump}" if dump else ""
            rows.append(RunEvent(e.ts, e.step, e.rank, "stall", f"{quiet} (the trainer's watchdog){stacks}"))
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
