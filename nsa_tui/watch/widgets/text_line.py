"""One line of styled text that repaints only when its text or styles change.

Drawn through Textual's line API from a cached strip: the header repaints several times a second
while a run trains, and converting the Rich text on every repaint was a measurable share of the
dashboard's CPU (bench/watch_live.py)."""

from __future__ import annotations

from rich.segment import Segment
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget


class TextLine(Widget):
    DEFAULT_CSS = "TextLine { height: 1; }"

    def __init__(self) -> None:
        super().__init__()
        self.text = Text()
        self._strip: Strip | None = None  # self.text rendered at self._strip_width
        self._strip_width = -1

    def show(self, text: Text) -> None:
        if text.plain != self.text.plain or text.spans != self.text.spans:
            self.text = text
            self._strip = None
            self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y != 0:
            return Strip.blank(width, self.rich_style)
        if self._strip is None or self._strip_width != width:
            console = self.app.console
            # the widget's colours, then the text's base style (Text.render leaves it to its caller), then spans
            base = self.rich_style + console.get_style(self.text.style)
            segments = Segment.apply_style(self.text.render(console, end=""), base)
            self._strip = Strip(segments).crop_extend(0, width, self.rich_style)
            self._strip_width = width
        return self._strip
