"""A multi-series braille line chart with axes (see chart_render for the drawing), under a
one-line title that carries the latest values. Title and plot are separate widgets so a new
value repaints one line, and the plot repaints only when a dot moves."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget

from nsa_tui import fmt
from nsa_tui.watch.chart_render import ChartSpec, layout_key, render
from nsa_tui.watch.layout import fit_fields, name_cap
from nsa_tui.watch.widgets.text_line import TextLine


class _Plot(Widget):
    DEFAULT_CSS = "_Plot { height: 1fr; }"

    def __init__(self, spec: Callable[[], ChartSpec | None]) -> None:
        super().__init__()
        self._spec_fn = spec
        self._chart_text: Text | None = None
        self._drawn_size: tuple[int, int] = (0, 0)
        self._drawn_key: tuple | None = None  # chart_render.layout_key of what is on screen

    def redraw(self) -> None:
        if self.size.width == 0 or self.size.height == 0:
            return
        spec = self._spec_fn()
        key = None if spec is None else layout_key(spec, self.size.width, max(2, self.size.height))
        if key is not None and key == self._drawn_key and self._chart_text is not None:
            return  # the new points fell into columns whose min and max did not move: nothing to redraw
        self._drawn_key = key
        text = Text() if spec is None else render(spec, self.size.width, max(2, self.size.height))
        if self._chart_text is None or text.plain != self._chart_text.plain or text.spans != self._chart_text.spans:
            self._chart_text, self._drawn_size = text, (self.size.width, self.size.height)
            self.refresh()

    def render(self) -> Text:
        if self._chart_text is None or self._drawn_size != (self.size.width, self.size.height):
            self._chart_text, self._drawn_size = self._build(), (self.size.width, self.size.height)
            self._drawn_key = None
        return self._chart_text

    def _build(self) -> Text:
        spec = self._spec_fn()
        if spec is None:
            return Text()
        return render(spec, self.size.width, max(2, self.size.height))


class LineChart(Vertical):
    DEFAULT_CSS = """
    LineChart { height: 1fr; min-height: 4; }
    """

    def __init__(
        self,
        spec: Callable[[], ChartSpec | None],
        title: Callable[[], list[str]],
        notes: Callable[[], list[tuple[str, str]]] | None = None,
        **kw,
    ) -> None:
        super().__init__(**kw)
        self._spec_fn = spec
        self._title_fn = title
        # (text, style) after each line's label in the legend (the compare view: each run's health mark)
        self._notes_fn = notes

    def compose(self) -> ComposeResult:
        yield TextLine()
        yield _Plot(self._spec_fn)

    def redraw(self) -> None:
        """Recompute the title and the plot; each repaints only if what it shows changed."""
        if not self.display:
            return
        title = Text(fit_fields(self._title_fn(), self.size.width), style="bold", no_wrap=True, overflow="crop")
        spec = self._spec_fn()
        notes = self._notes_fn() if self._notes_fn is not None else []
        room = 12 * len(spec.lines) + sum(len(n) + 1 for n, _ in notes if n) if spec is not None else 0
        if spec is not None and len(spec.lines) > 1 and len(title) + room < self.size.width:
            title.append("  ")
            marks = [n for n, _ in notes]
            # with notes (the compare view's run marks) the labels (run names) share the room as the run tabs'
            # names do, so that no mark is cropped at the edge; other legends are short
            labels = [ln.label for ln in spec.lines]
            cap = name_cap(labels, self.size.width - len(title), marks, frame=1) if notes else 0  # frame: the ■
            for i, ln in enumerate(spec.lines):
                title.append("■", style=ln.color)
                title.append(f"{fmt.clip_middle(ln.label, cap) if cap else ln.label} ", style="grey62")
                note, style = notes[i] if i < len(notes) else ("", "")
                if note:
                    title.append(note, style=style)
                    title.append(" ")
        self.query_one(TextLine).show(title)
        self.query_one(_Plot).redraw()

    def on_mount(self) -> None:
        self.call_after_refresh(self.redraw)

    def on_resize(self) -> None:
        self.call_after_refresh(self.redraw)
