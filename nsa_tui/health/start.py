"""Where a run that has not stepped yet is: its phase, since when, and the clock `stuck_at_start` counts on.

Pure Python over a RunHistory: `stuck_at_start` (checks.py), the verdict's `start` (engine.py) and the dashboard's
header all read it, so the time a user sees is the time the rule judges."""

from __future__ import annotations

from dataclasses import dataclass

from nsa_train.telemetry import schema
from nsa_tui.runs.history import Event, RunHistory

CLOCK_BOOT = "boot"
CLOCK_REPLAY = "replay"  # a resume's replay of the data stream, from its last report
CLOCK_LAUNCH = "launch"  # `nsa launch`, before the process it started wrote a boot record


@dataclass(frozen=True)
class StartClock:
    """Where `stuck_at_start` counts from: ``since`` (a time) of ``kind`` (CLOCK_*); ``replay``: the phase record of
    a resume's replay that moved it (CLOCK_REPLAY only)."""

    since: float
    kind: str
    replay: Event | None = None


def start_clock(h: RunHistory) -> StartClock | None:
    """The current attempt's boot, else `nsa launch`'s time; moved on by a resume re-reading a hub stream up to its
    saved position (phase records with `replayed`): a start that moves. None when neither is known."""
    boot = h.boot_event
    started = boot.ts if boot is not None else h.launch_ts
    if started is None:
        return None
    replay = h.last_event(schema.KIND_PHASE)
    moved = replay.ts if replay is not None and replay.fields.get("replayed") and replay.ts else None
    if moved is not None and moved >= started:  # an earlier attempt's replay does not count
        return StartClock(moved, CLOCK_REPLAY, replay)
    return StartClock(started, CLOCK_BOOT if boot is not None else CLOCK_LAUNCH)


def phase_entered(h: RunHistory) -> tuple[str, float] | None:
    """The current attempt's phase (schema.PHASES, the newest phase record's) and when it began: the first of the
    newest records of that phase in a row (`config` and its `done`, a replay's reports, are one phase). None before
    the first phase record, or when its time is not known."""
    phases = h.attempt_events(schema.KIND_PHASE)
    if not phases:
        return None
    name = _phase(phases[-1])
    if name is None:
        return None
    began = None
    for ev in reversed(phases):
        if _phase(ev) != name:
            break
        began = ev.ts if ev.ts is not None else began
    return (name, began) if began is not None else None


def _phase(ev: Event) -> str | None:
    p = ev.fields.get("phase") or ev.fields.get("name")  # as RunHistory.last_phase reads it
    return str(p) if p is not None else None
