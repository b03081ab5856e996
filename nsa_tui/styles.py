"""The colours of a run's state and of a verdict's health, one table each for `nsa status`, `nsa runs` and the
dashboard (rich style strings: no Textual), so that a state reads the same in each."""

from __future__ import annotations

HEALTH_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red"}  # nsa_tui.health.engine.HEALTH

# nsa_tui.health.engine.STATES: an ended run in a quiet colour, a fault as a badge that stands out
STATE_STYLE = {
    "starting": "bold cyan",
    "running": "bold green",
    "finished": "bold blue",
    "halted": "bold yellow",
    "crashed": "bold white on red",
    "stalled": "bold black on yellow",
    "unknown": "bold",
}


def state_style(state: str) -> str:
    """The style of ``state``; a state this table does not know (a newer remote nsa's) in plain bold."""
    return STATE_STYLE.get(state, "bold")
