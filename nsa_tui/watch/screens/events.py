"""The `e` screen: every event the dashboard holds of the run, oldest first, wrapped, scrolled by keys or mouse."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from nsa_tui.watch.widgets.events_pane import event_row

KEYS_LINE = "↑ ↓ PgUp PgDn Home End or the mouse wheel scroll · e or escape closes"


class EventsScreen(ModalScreen[None]):
    BINDINGS: ClassVar = [("escape,q,e", "app.pop_screen", "close")]
    DEFAULT_CSS = """
    EventsScreen { align: center middle; }
    EventsScreen > Vertical { width: 100%; height: 100%; border: thick $primary; background: $surface; padding: 0 1; }
    EventsScreen #events-keys { color: $text-muted; height: 1; }
    EventsScreen #events-scroll { height: 1fr; }
    """

    def __init__(self, run: str, events: list[Any]) -> None:
        super().__init__()
        self.run = run
        self.events: list[Any] = []
        self._pending = events

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(KEYS_LINE, id="events-keys")
            with VerticalScroll(id="events-scroll"):
                yield Static(id="events-list")

    def on_mount(self) -> None:
        self.show(self._pending)
        self.query_one("#events-scroll", VerticalScroll).focus()

    def show(self, events: list[Any]) -> None:
        """List ``events`` (in time order); the view stays at the newest while it is there (new ones come in
        below), else where the user scrolled to."""
        if events == self.events:
            return
        self.events = list(events)
        box = self.query_one(Vertical)
        n = len(events)
        box.border_title = f"events of {self.run} (UTC): {n} event{'s' * (n != 1)}, oldest first"
        scroll = self.query_one("#events-scroll", VerticalScroll)
        at_end = scroll.scroll_y >= scroll.max_scroll_y
        rows = Text("\n").join(event_row(ev, date=True) for ev in events) if events else Text("no events yet")
        self.query_one("#events-list", Static).update(rows)
        if at_end:
            self.call_after_refresh(scroll.scroll_end, animate=False)
