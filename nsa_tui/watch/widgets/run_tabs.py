"""The list of open runs; the active one is highlighted (tab / arrows / click to switch)."""

from __future__ import annotations

from rich.text import Text
from textual.events import Click
from textual.message import Message
from textual.widget import Widget

from nsa_tui import fmt


def name_cap(names: list[str], width: int) -> int:
    """The longest a tab's name may be for every tab to fit in ``width`` (short names stay whole, the long ones
    share what is left): one long name must not push the other runs, or the active one, off the line."""
    fixed = sum(len(f" {i + 1}: ") + 1 for i in range(len(names))) - 1  # number, padding, the gaps between
    longest = max((len(n) for n in names), default=0)
    for cap in range(longest, 1, -1):
        if fixed + sum(min(len(n), cap) for n in names) <= width:
            return cap
    return 1 if longest else 0


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
