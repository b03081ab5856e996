"""Which signal stopped a run that nobody asked to halt, and how every tool says it.

A stop signal (SIGTERM, SIGINT, SIGHUP) ends the trainer the way a `.HALT` does, with a checkpoint, so the run is
`halted` (docs/health.md). But a SIGHUP is what a killed tmux server or a dropped terminal sends: read as `halted,
health OK`, it could not be told from the user's own `nsa halt`. The end record's reason is `signal`, and a rank
that received the signal ends with exit status 128 + its number (the other ranks stop with it, exit 0): that names it.
"""

from __future__ import annotations

import signal
from typing import Any

from nsa_train.telemetry import schema

# what sends each stop signal to a trainer, for the line that says nobody asked for the halt
SENDERS = {
    "SIGHUP": "its terminal or tmux server went away",
    "SIGTERM": "a kill, a scheduler's preemption or a shutdown",
    "SIGINT": "Ctrl-C in its terminal",
}
UNNAMED = "a signal"  # a reason `signal` whose ranks' exit statuses name none


def stop_signal(end_records: list[dict[str, Any]]) -> str | None:
    """The signal's name ('SIGHUP') when the attempt's end records say a signal stopped it, UNNAMED when none of
    them names it; None when the run did not end by a signal (a halt, completion, an error, or no end record)."""
    if not any(r.get("reason") == schema.END_SIGNAL for r in end_records):
        return None
    for r in end_records:
        status = r.get("exit_status")
        if r.get("reason") == schema.END_SIGNAL and isinstance(status, int) and not isinstance(status, bool):
            try:
                return signal.Signals(status - 128).name
            except ValueError:
                continue
    return UNNAMED


def halt_was_requested(end_records: list[dict[str, Any]], halt_file_ts: float | None) -> bool:
    """A halt had been requested when the signal stopped the run: rank 0's end record says so
    (schema.END_HALT_REQUESTED: a .HALT came after the step's check), or a .HALT dated at or before the end is still
    there (one the trainer did not get to remove: a signal during its start-up)."""
    if any(r.get(schema.END_HALT_REQUESTED) is True for r in end_records):
        return True
    ends = [t for r in end_records if isinstance(t := r.get("ts"), int | float) and not isinstance(t, bool)]
    return halt_file_ts is not None and bool(ends) and halt_file_ts <= max(ends)


# `nsa runs` and the dashboard's header, after the signal's name: a halt nobody asked for, or one a signal overtook
NOT_REQUESTED = "not requested"
BEFORE_THE_HALT = "before the requested halt"


def halted_by_text(name: str, halt_requested: bool = False) -> str:
    """'halted by SIGHUP (no halt was requested: its terminal or tmux server went away)'; where a halt had been
    requested (halt_was_requested) 'halted by SIGHUP (a halt had been requested; the signal ended the run first: its
    terminal or tmux server went away)'."""
    why = SENDERS.get(name)
    said = "a halt had been requested; the signal ended the run first" if halt_requested else "no halt was requested"
    return f"halted by {name} ({said}" + (f": {why})" if why else ")")


def not_the_halt_text(name: str) -> str:
    """'stopped by SIGHUP, not by this halt (its terminal or tmux server went away)': `nsa halt`'s line for a run
    that a signal stopped while the halt waited for it to stop."""
    why = SENDERS.get(name)
    return f"stopped by {name}, not by this halt" + (f" ({why})" if why else "")
