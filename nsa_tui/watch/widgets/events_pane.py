"""Boot, phases, checkpoints, evals, stalls, the end; then the tail of train.log/console.log."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.widget import Widget

from nsa_tui.styles import EVENT_KIND_STYLE
from nsa_tui.watch.events import describe_event
from nsa_tui.watch.layout import split_rows


def event_row(ev: Any, *, date: bool = False) -> Text:
    """One event as the pane shows it: its time (UTC; with ``date``, its day first), step and words."""
    r = Text()
    when = time.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S", time.gmtime(ev.ts)) if ev.ts else "--:--:--"
    r.append(when + " ", style="grey50")
    r.append(f"{ev.step if ev.step is not None else '-':>6} ", style="grey62")
    r.append(describe_event(ev), style=EVENT_KIND_STYLE.get(ev.kind, ""))
    return r


class EventsPane(Widget):
    DEFAULT_CSS = """
    EventsPane { height: 1fr; border: round $primary; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.border_title = "events (UTC) · log"
        self.border_subtitle = "e: all events"  # the pane cuts long lines and holds the newest: the key lists them all
        self.events: list = []
        self.logs: list[tuple[str, str]] = []

    def show(self, events: list, logs: list[tuple[str, str]]) -> None:
        if events == self.events and logs == self.logs:
            return
        self.events, self.logs = events, logs
        self.refresh()

    async def on_click(self) -> None:
        # the pane shows the newest events cut to its width: a click opens them all, wrapped (as the `e` key)
        await self.app.run_action("events")

    def render(self) -> Text:
        h = max(1, self.size.height)
        n_ev, n_logs = split_rows(h, len(self.events), len(self.logs))
        t = Text(no_wrap=True, overflow="ellipsis")
        rows: list[Text] = []
        for ev in self.events[-n_ev:] if n_ev > 0 else []:
            rows.append(event_row(ev))
        for _name, line in self.logs[-n_logs:] if n_logs else []:
            rows.append(Text(line, style="grey70"))
        for i, r in enumerate(rows[-h:]):
            if i:
                t.append("\n")
            t.append_text(r)
        return t
