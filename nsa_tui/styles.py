"""The colours of a run's state, of a verdict's health and of an event's kind, one table each for `nsa status`,
`nsa runs` and the dashboard (rich style strings: no Textual), so that a state reads the same in each."""

from __future__ import annotations

from nsa_train.telemetry import schema

HEALTH_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red"}  # nsa_tui.health.engine.HEALTH

# An alert's severity (nsa_tui.health.rules.SEVERITIES) as the dashboard's badge before its rule: HEALTH_STYLE's
# colour as the background, not a second table of colours (tests/status/test_state_style.py holds them together)
SEVERITY_BADGE_STYLE = {"critical": "bold white on red", "warning": "black on yellow"}

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


# the dashboard's events pane: every kind nsa_tui.runs.history.EVENT_KINDS keeps as an event
EVENT_KIND_STYLE = {
    schema.KIND_BOOT: "cyan",
    schema.KIND_PHASE: "blue",
    schema.KIND_CHECKPOINT: "green",
    schema.KIND_EVAL: "yellow",
    schema.KIND_STALL: "bold red",
    schema.KIND_END: "bold magenta",
    schema.KIND_ERROR: "bold red",
    schema.KIND_MOVED: "cyan",
}
