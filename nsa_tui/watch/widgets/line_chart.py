"""A multi-series braille line chart with axes (see chart_render for the drawing)."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.widget import Widget

from nsa_tui.watch.chart_render import ChartSpec, render


class LineChart(Widget):
    DEFAULT_CSS = """
    LineChart { height: 1fr; min-height: 4; }
    """

    def __init__(self, spec: Callable[[], ChartSpec | None], title: Callable[[], str], **kw) -> None:
        super().__init__(**kw)
        self._spec = spec
        self._title = title

    def render(self) -> Text:
        w, h = self.size.width, self.size.height
        out = Text(no_wrap=True, overflow="crop")
        spec = self._spec()
        out.append(self._title()[:w], style="bold")
        if spec is not None and h >= 3:
            legend = "  ".join(f"{ln.label}" for ln in spec.lines if len(spec.lines) > 1)
            if legend and len(self._title()) + len(legend) + 3 < w:
                out.append("  ")
                for ln in spec.lines:
                    out.append("■", style=ln.color)
                    out.append(f"{ln.label} ", style="grey62")
            out.append("\n")
            out.append_text(render(spec, w, h - 1))
        return out
