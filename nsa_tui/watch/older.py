"""The events of a heartbeat's part before its first-read window (pure: no Textual).

Those lines (older_sh's scan) are parsed here as RunHistory parses every heartbeat line, into a history of their
own: the run's health is judged on the window, as `nsa status` judges it, and only the events pane and the events
screen list these.
"""

from __future__ import annotations

from nsa_tui.runs.history import EVENT_KINDS, FORMAT_GENERIC, Event, RunHistory
from nsa_tui.tail.lines import split_lines


def older_events(name: str, blob: bytes, fmt: str | None) -> list[Event]:
    """The events among ``blob``'s lines of heartbeat file ``name``, oldest first, read as format ``fmt`` (the
    run's, once known). The first line may be cut (the scan keeps only its newest bytes): it does not parse and
    is left out, as is whatever else is no record."""
    if fmt == FORMAT_GENERIC:
        return []  # a generic log has no events: each of its records is a metric
    h = RunHistory(fmt)
    h.feed(name, split_lines(blob))
    return [ev for ev in h.events if ev.kind in EVENT_KINDS]


def all_events(older: dict[str, list[Event]], held: list[Event]) -> list[Event]:
    """The events before the windows (each file's), then those the run's history holds: the windows start where the
    scanned parts end, so no event is in both."""
    out: list[Event] = []
    for name in sorted(older):
        out += older[name]
    return out + held
