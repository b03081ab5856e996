"""Per-rank liveness: the step and the age of each rank's newest record (a rank above 0 writes one only every
monitor.liveness_every_s, so its step may lag rank 0's)."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from nsa_tui import fmt

STALE_S = 120.0  # at least: a rank writes a liveness record every monitor.liveness_every_s, steps or not


class RanksPanel(Widget):
    DEFAULT_CSS = """
    RanksPanel { height: auto; max-height: 6; padding: 0 1; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.rows: list[tuple[int, int | None, float | None]] = []
        self.ended = ""
        self.stale_s = STALE_S
        self.stopped: frozenset[int] = frozenset()

    def show(
        self,
        rows: list[tuple[int, int | None, float | None]],
        ended: str = "",
        liveness_every_s: float = 0.0,
        stopped: frozenset[int] = frozenset(),
    ) -> None:
        """``ended``: the run's state once its processes are gone (finished, halted, crashed), or `unknown` (its
        directory or host out of reach: nothing new can say a rank lives), else ''. A rank killed a moment ago still
        has a fresh last record: only this says it is not alive. A rank is stale after 3 liveness intervals.
        ``stopped``: the ranks whose process is stopped (rank_stopped's facts): a fresh age read as a live rank.
        Such a rank reads `r1 stopped, last record 1m39s ago`: its newest record's step (a liveness record's, maybe
        from long before the stop) and bare age (not how long it has been stopped) read as where and since when."""
        # ages in whole seconds: a repaint per second at most, not per redraw
        rows = [(r, s, None if a is None else float(int(a))) for r, s, a in rows]
        stale_s = max(STALE_S, 3 * liveness_every_s)
        if (rows, ended, stale_s, stopped) == (self.rows, self.ended, self.stale_s, self.stopped):
            return
        self.rows, self.ended, self.stale_s, self.stopped = rows, ended, stale_s, stopped
        self.refresh()

    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("ranks ", style="bold")
        if not self.rows:
            t.append("none yet", style="grey50")
        for rank, step, age in self.rows:
            stopped = rank in self.stopped and not self.ended
            if self.ended in ("finished", "halted"):  # gone, and not a fault
                t.append("○ ", style="grey62")
            elif self.ended == "unknown":
                t.append("? ", style="grey62")
            elif stopped:  # alive, not stepping: neither the green of a live rank nor the red of a gone one
                t.append("○ ", style="bold yellow")
            else:
                dead = age is None or age > self.stale_s or self.ended == "crashed"
                t.append("○ " if dead else "● ", style="red" if dead else "green")
            if stopped:
                t.append(f"r{rank} ")
                t.append("stopped", style="bold yellow")
                t.append(f", last record {fmt.duration(age)} ago  " if age is not None else "  ")
                continue
            t.append(f"r{rank} s{step if step is not None else '-'} {fmt.duration(age)}  ")
        return t
