"""Per-rank liveness: last step and the age of each rank's last record."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from nsa_tui.watch import fmt

STALE_S = 120.0


class RanksPanel(Widget):
    DEFAULT_CSS = """
    RanksPanel { height: auto; max-height: 6; padding: 0 1; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.rows: list[tuple[int, int | None, float | None]] = []

    def show(self, rows: list[tuple[int, int | None, float | None]]) -> None:
        # ages in whole seconds: a repaint per second at most, not per redraw
        rows = [(r, s, None if a is None else float(int(a))) for r, s, a in rows]
        if rows == self.rows:
            return
        self.rows = rows
        self.refresh()

    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("ranks ", style="bold")
        if not self.rows:
            t.append("none yet", style="grey50")
        for rank, step, age in self.rows:
            dead = age is None or age > STALE_S
            t.append("● " if not dead else "○ ", style="red" if dead else "green")
            t.append(f"r{rank} s{step if step is not None else '-'} {fmt.duration(age)}  ")
        return t
