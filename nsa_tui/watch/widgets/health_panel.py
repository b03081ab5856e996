"""Active alerts by severity: rule name (as in `nsa status`), message, since when."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

from rich.text import Text
from textual.widget import Widget

from nsa_tui.styles import SEVERITY_BADGE_STYLE
from nsa_tui.watch.layout import fitted, more_lines
from nsa_tui.watch.verdict import SEVERITY_ORDER, AlertView, VerdictView


class HealthPanel(Widget):
    DEFAULT_CSS = """
    HealthPanel { height: auto; max-height: 12; border: round $primary; padding: 0 1; text-wrap: nowrap; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.border_title = "health"
        self.verdict = VerdictView()
        self.status_cmd = ""  # the command that lists every alert of this run, named when some do not fit

    def show(self, v: VerdictView, status_cmd: str = "") -> None:
        if v == self.verdict and status_cmd == self.status_cmd:
            return
        grew = (
            len(v.alerts) != len(self.verdict.alerts)
            or len(v.start_warnings) != len(self.verdict.start_warnings)
            or bool(v.problem) != bool(self.verdict.problem)
            or bool(v.rules_problem) != bool(self.verdict.rules_problem)
            or bool(v.toks_not_judged) != bool(self.verdict.toks_not_judged)
            or v.unreachable != self.verdict.unreachable
            or v.nothing_read != self.verdict.nothing_read
        )
        self.verdict = v
        self.status_cmd = status_cmd
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
        if v.nothing_read:  # no "no active alerts" for a run nothing of which was read; wrapped, as it is long
            t.append("\n".join(textwrap.wrap(v.nothing_read, max(10, self.size.width))), style="yellow")
            return t
        rows = self._rows()
        width = max(10, self.size.width)
        if v.rules_problem:
            t.append(v.rules_problem + "\n", style="yellow")
            rows -= 1
        # how the run is judged, as the line above: first, where no alert pushes it out. Whole where the panel keeps
        # 3 rows for what follows (its end names the floor that judges it); in what is left once each alert has its
        # rule and two lines of its message, each start warning its line (a note on a tiny run's tok/s cut a
        # critical alert's message and hid start warnings); none where they need every row (`nsa status` says it)
        below = 3 * len(v.alerts) + len(v.start_warnings) + (not v.alerts)  # "✓ no active alerts"
        toks_rows = min(max(1, min(3, rows - 3)), rows - below)
        if v.toks_not_judged and toks_rows > 0:
            said = fitted(v.toks_not_judged, width, toks_rows)
            label, colon, rest = said[0].partition(":")
            t.append(label, style="yellow")
            t.append(colon + "\n".join([rest, *said[1:]]) + "\n", style="grey62")
            rows -= len(said)
        rows = max(1, rows)
        if not v.alerts:
            t.append("✓ no active alerts", style="green")
            shown, more = v.start_warnings, []
            if len(shown) > rows - 1:  # more warnings than rows: the last row (or two) counts the rest
                n = len(shown)
                keep, more = self._overflow(rows - 1, lambda k: ([], n - k), width)
                shown = shown[:keep]
            # the warnings share the rows below it and the count's, each wrapped over its part
            lines = max(1, (rows - 1 - len(more)) // max(1, len(shown)))
            self._start_warnings(t, shown, width, lines)
            self._append_more(t, more, critical=False)
            return t
        # the most severe first, in the engine's order within a severity (sorted is stable)
        alerts = sorted(v.alerts, key=lambda a: SEVERITY_ORDER.get(a.severity, 3))
        warnings = v.start_warnings
        if len(alerts) + len(warnings) > rows:
            # Not even a line each: the last row says how many are hidden and where all of them are (cut off
            # silently, a critical alert below the panel's edge went unseen). Alerts before start warnings, their
            # rule lines before any message
            n_warn = len(warnings)
            keep, more = self._overflow(rows, lambda k: (alerts[k:], n_warn - max(0, k - len(alerts))), width)
            hidden, kept = alerts[keep:], warnings[: max(0, keep - len(alerts))]
            shown = alerts[:keep]
            self._alerts(t, shown, width, [0] * len(shown))
            self._start_warnings(t, kept, width, 1)
            self._append_more(t, more, critical=any(SEVERITY_ORDER.get(a.severity) == 0 for a in hidden))
            return t
        # Every alert gets its rule line and every start warning one line; the messages share what is left of the
        # panel, wrapped at words (on one unwrapped line each showed its first width's worth, however tall the
        # panel). Too few rows for a message line each: the most severe alerts get theirs
        spare = rows - len(alerts) - len(warnings)
        per = spare // len(alerts)
        self._alerts(t, alerts, width, [per] * len(alerts) if per else [int(n < spare) for n in range(len(alerts))])
        self._start_warnings(t, warnings, width, 1)
        return t

    def _rows(self) -> int:
        """The rows the panel has for its lines: its height, or, where its height follows its content (beside the
        charts on a wide screen), as many as its max-height lets it grow to (its height now is the last content's)."""
        st = self.styles
        if st.height is not None and st.height.is_auto and st.max_height is not None:
            screen = self.app.size
            return int(st.max_height.resolve(screen, screen)) - st.gutter.height
        return self.size.height or 8

    def _alerts(self, t: Text, alerts: list[AlertView], width: int, msg_lines: list[int]) -> None:
        """Each alert's rule line, then its message wrapped into its share of ``msg_lines`` (0: none)."""
        for n, (a, lines) in enumerate(zip(alerts, msg_lines, strict=True)):
            if n:
                t.append("\n")
            sev = a.severity.upper()[:4]
            t.append(f" {sev} ", style=SEVERITY_BADGE_STYLE.get(a.severity, "reverse"))
            t.append(f" {a.rule}", style="bold")
            if a.since_step is not None:
                # whole or shorter, never wrapped: at 80 columns "since step 15" / "00" read as step 15
                head = len(sev) + 3 + len(a.rule)
                since = [s for s in (f" since step {a.since_step}", f" step {a.since_step}") if head + len(s) <= width]
                if since:
                    t.append(since[0], style="grey62")
            if lines:
                t.append("\n" + "\n".join(fitted(a.message, width, lines)))

    def _start_warnings(self, t: Text, warnings: list[str], width: int, lines: int) -> None:
        """What the trainer warned about as this attempt started: not alerts, but they stay in view all run
        (the events pane scrolls them away), each in ``lines`` rows at most."""
        for w in warnings:
            said = fitted("at start " + w, width, lines)
            t.append("\nat start", style="yellow")
            t.append(said[0].removeprefix("at start"), style="grey62")
            for line in said[1:]:
                t.append("\n" + line, style="grey62")

    def _more(self, hidden: list[AlertView], warnings: int, width: int, rows: int) -> list[str]:
        """The line(s) that count what the panel has no row for, and name the command that lists it all."""
        if not hidden and not warnings:
            return []
        critical = sum(SEVERITY_ORDER.get(a.severity) == 0 for a in hidden)
        return more_lines(len(hidden), critical, warnings, self.status_cmd, width, rows)

    def _overflow(
        self, rows: int, hidden_at: Callable[[int], tuple[list[AlertView], int]], width: int
    ) -> tuple[int, list[str]]:
        """(how many of ``rows`` the items keep, the lines counting the rest): one row for the count and the command;
        two where only then the command fits whole and an item keeps its row (``hidden_at(k)``: what k rows hide)."""
        keep = max(0, rows - 1)
        more = self._more(*hidden_at(keep), width, 1)
        if self.status_cmd and not more[0].endswith(self.status_cmd) and keep >= 2:
            two = self._more(*hidden_at(keep - 1), width, 2)
            if len(two) == 2:
                return keep - 1, two
        return keep, more

    def _append_more(self, t: Text, more: list[str], critical: bool) -> None:
        if not more:
            return
        if t.plain and not t.plain.endswith("\n"):
            t.append("\n")
        t.append("\n".join(more), style="bold red" if critical else "yellow")
