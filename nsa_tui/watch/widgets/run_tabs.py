"""The list of open runs, each with its health mark (verdict.run_mark); the active one is highlighted (tab / arrows /
click to switch)."""

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
        self.marks: list[tuple[str, str]] = [("", "")] * len(names)
        self._spans: list[tuple[int, int]] = []

    def select(self, i: int) -> None:
        self.active = i
        self.refresh()

    def show_marks(self, marks: list[tuple[str, str]]) -> None:
        """Each run's (text, style) after its name; repaints only when one changed."""
        if marks != self.marks:
            self.marks = marks
            self.refresh()

    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        self._spans = []
        cap = name_cap(self.names, self.size.width, [m for m, _ in self.marks])
        for i, (n, (mark, mark_style)) in enumerate(zip(self.names, self.marks, strict=True)):
            if i:
                t.append(" ")
            start = len(t.plain)
            style = "bold reverse" if i == self.active else "grey62"
            t.append(f" {i + 1}:{fmt.clip_middle(n, cap)}", style=style)
            if mark:  # inside the tab (a click on it selects the run); reversed with it when active
                t.append(" ", style=style)
                t.append(mark, style=f"{mark_style} reverse" if i == self.active else mark_style)
            t.append(" ", style=style)
            self._spans.append((start, len(t.plain)))
        return t

    def on_click(self, event: Click) -> None:
        for i, (a, b) in enumerate(self._spans):
            if a <= event.x < b:
                self.post_message(self.Selected(i))
