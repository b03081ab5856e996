"""The list of open runs; the active one is highlighted (tab / arrows / click to switch)."""

from __future__ import annotations

from rich.text import Text
from textual.events import Click
from textual.message import Message
from textual.widget import Widget

from nsa_tui import fmt
from nsa_tui.watch.layout import name_cap


class RunTabs(Widget):
    DEFAULT_CSS = """
    RunTabs { height: 1; }
    """

    class Selected(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, names: list[str], **kw) -> None:
        super().__init__(**kw)
        self.names = names
        self.active = 0
        self._spans: list[tuple[int, int]] = []

    def select(self, i: int) -> None:
        self.active = i
        self.refresh()

    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        self._spans = []
        cap = name_cap(self.names, self.size.width)
        for i, n in enumerate(self.names):
            if i:
                t.append(" ")
            start = len(t.plain)
            t.append(f" {i + 1}:{fmt.clip(n, cap)} ", style="bold reverse" if i == self.active else "grey62")
            self._spans.append((start, len(t.plain)))
        return t

    def on_click(self, event: Click) -> None:
        for i, (a, b) in enumerate(self._spans):
            if a <= event.x < b:
                self.post_message(self.Selected(i))
