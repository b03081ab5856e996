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


def halted_by_text(name: str) -> str:
    """'halted by SIGHUP (no halt was requested: its terminal or tmux server went away)'."""
    why = SENDERS.get(name)
    return f"halted by {name} (no halt was requested" + (f": {why})" if why else ")")


def not_the_halt_text(name: str) -> str:
    """'stopped by SIGHUP, not by this halt (its terminal or tmux server went away)': `nsa halt`'s line for a run
    that a signal stopped while the halt waited for it to stop."""
    why = SENDERS.get(name)
    return f"stopped by {name}, not by this halt" + (f" ({why})" if why else "")
