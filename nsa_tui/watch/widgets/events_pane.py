"""Boot, phases, checkpoints, evals, stalls, the end; then the tail of train.log/console.log."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widget import Widget

from nsa_tui.styles import EVENT_KIND_STYLE
from nsa_tui.watch.events import describe_event
from nsa_tui.watch.layout import split_rows


class EventsPane(Widget):
    DEFAULT_CSS = """
    EventsPane { height: 1fr; border: round $primary; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.border_title = "events (UTC) · log"
        self.events: list = []
        self.logs: list[tuple[str, str]] = []

    def show(self, events: list, logs: list[tuple[str, str]]) -> None:
        if events == self.events and logs == self.logs:
            return
        self.events, self.logs = events, logs
        self.refresh()

    def render(self) -> Text:
        h = max(1, self.size.height)
        n_ev, n_logs = split_rows(h, len(self.events), len(self.logs))
        t = Text(no_wrap=True, overflow="ellipsis")
        rows: list[Text] = []
        for ev in self.events[-n_ev:] if n_ev > 0 else []:
            r = Text()
            when = time.strftime("%H:%M:%S", time.gmtime(ev.ts)) if ev.ts else "--:--:--"
            r.append(when + " ", style="grey50")
            r.append(f"{ev.step if ev.step is not None else '-':>6} ", style="grey62")
            r.append(describe_event(ev), style=EVENT_KIND_STYLE.get(ev.kind, ""))
            rows.append(r)
        for _name, line in self.logs[-n_logs:] if n_logs else []:
            rows.append(Text(line, style="grey70"))
        for i, r in enumerate(rows[-h:]):
            if i:
                t.append("\n")
            t.append_text(r)
        return t
