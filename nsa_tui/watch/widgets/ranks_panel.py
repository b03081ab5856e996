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
        self.ended = ""

    def show(self, rows: list[tuple[int, int | None, float | None]], ended: str = "") -> None:
        """``ended``: the run's state once its processes are gone (finished, halted, crashed), else ''. A rank
        killed a moment ago still has a fresh last record: only this says it is not alive."""
        # ages in whole seconds: a repaint per second at most, not per redraw
        rows = [(r, s, None if a is None else float(int(a))) for r, s, a in rows]
        if rows == self.rows and ended == self.ended:
            return
        self.rows, self.ended = rows, ended
        self.refresh()

    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("ranks ", style="bold")
        if not self.rows:
            t.append("none yet", style="grey50")
        for rank, step, age in self.rows:
            if self.ended in ("finished", "halted"):  # gone, and not a fault
                t.append("○ ", style="grey62")
            else:
                dead = age is None or age > STALE_S or self.ended == "crashed"
                t.append("○ " if dead else "● ", style="red" if dead else "green")
            t.append(f"r{rank} s{step if step is not None else '-'} {fmt.duration(age)}  ")
        return t
