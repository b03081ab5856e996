"""Active alerts by severity: rule name (as in `nsa status`), message, since when."""

from __future__ import annotations

import textwrap

from rich.text import Text
from textual.widget import Widget

from nsa_tui.watch.verdict import VerdictView

SEV_STYLE = {"critical": "bold white on red", "error": "bold white on red", "warning": "black on yellow"}


class HealthPanel(Widget):
    DEFAULT_CSS = """
    HealthPanel { height: auto; max-height: 12; border: round $primary; padding: 0 1; text-wrap: nowrap; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.border_title = "health"
        self.verdict = VerdictView()

    def show(self, v: VerdictView) -> None:
        if v == self.verdict:
            return
        grew = (
            len(v.alerts) != len(self.verdict.alerts)
            or len(v.start_warnings) != len(self.verdict.start_warnings)
            or bool(v.problem) != bool(self.verdict.problem)
            or bool(v.rules_problem) != bool(self.verdict.rules_problem)
            or v.unreachable != self.verdict.unreachable
        )
        self.verdict = v
        self.refresh(layout=grew)  # a new height only when the number of alerts changed

    def render(self) -> Text:
        v = self.verdict
        t = Text(no_wrap=True, overflow="ellipsis")
        if v.problem:
            t.append(v.problem, style="yellow")
            return t
        if v.unreachable:  # whole, wrapped: the header's line crops a long ssh error
            width = max(10, self.size.width)
            said = textwrap.wrap(f"not judged while the run cannot be read: {v.unreachable}", width)
            t.append("\n".join(said), style="yellow")
            return t
        if v.rules_problem:
            t.append(v.rules_problem + "\n", style="yellow")
        width = max(10, self.size.width)
        rows = self.size.height or 8
        if not v.alerts:
            t.append("✓ no active alerts", style="green")
            # the warnings share the rows below it, each wrapped over its part
            self._start_warnings(t, v, width, max(1, (rows - 1) // max(1, len(v.start_warnings))))
            return t
        # Every alert gets its rule line and every start warning one line; the messages share what is left of the
        # panel, wrapped at words (on one unwrapped line each showed its first width's worth, however tall the panel)
        rows = max(len(v.alerts), rows)
        msg_lines = max(1, (rows - len(v.alerts) - len(v.start_warnings)) // len(v.alerts))
        for n, a in enumerate(v.alerts):
            if n:
                t.append("\n")
            sev = a.severity.upper()[:4]
            t.append(f" {sev} ", style=SEV_STYLE.get(a.severity, "reverse"))
            t.append(f" {a.rule}", style="bold")
            if a.since_step is not None:
                # whole or shorter, never wrapped: at 80 columns "since step 15" / "00" read as step 15
                head = len(sev) + 3 + len(a.rule)
                since = [s for s in (f" since step {a.since_step}", f" step {a.since_step}") if head + len(s) <= width]
                if since:
                    t.append(since[0], style="grey62")
            t.append("\n" + "\n".join(_fitted(a.message, width, msg_lines)))
        self._start_warnings(t, v, width, 1)
        return t

    def _start_warnings(self, t: Text, v: VerdictView, width: int, lines: int) -> None:
        """What the trainer warned about as this attempt started: not alerts, but they stay in view all run
        (the events pane scrolls them away), each in ``lines`` rows at most."""
        for w in v.start_warnings:
            said = _fitted("at start " + w, width, lines)
            t.append("\nat start", style="yellow")
            t.append(said[0].removeprefix("at start"), style="grey62")
            for line in said[1:]:
                t.append("\n" + line, style="grey62")


def _fitted(text: str, width: int, lines: int) -> list[str]:
    """``text`` wrapped at words into at most ``lines`` rows of ``width``, the last cut with … when it goes on
    (the panel lays its lines out itself: Textual would wrap them past its height, where they are lost)."""
    rows = textwrap.wrap(text, width) or [""]
    if len(rows) > lines:
        rows = rows[:lines]
        rows[-1] = rows[-1][: width - 1] + "…"
    return rows
