"""Active alerts by severity: rule name (as in `nsa status`), message, since when; then the pending rules, dimmer."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

from rich.text import Text
from textual.widget import Widget

from nsa_tui.styles import SEVERITY_BADGE_STYLE
from nsa_tui.watch.layout import fitted, more_lines
from nsa_tui.watch.verdict import SEVERITY_ORDER, AlertView, PendingView, VerdictView


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
            or len(v.pending) != len(self.verdict.pending)
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
        below = 3 * len(v.alerts) + 2 * len(v.pending) + len(v.start_warnings) + (not v.alerts)  # + "✓ no active"
        toks_rows = min(max(1, min(3, rows - 3)), rows - below)
        if v.toks_not_judged and toks_rows > 0:
            said = fitted(v.toks_not_judged, width, toks_rows)
            label, colon, rest = said[0].partition(":")
            t.append(label, style="yellow")
            t.append(colon + "\n".join([rest, *said[1:]]) + "\n", style="grey62")
            rows -= len(said)
        rows = max(1, rows)
        pending, warnings = v.pending, v.start_warnings
        n_pend, n_warn = len(pending), len(warnings)
        if not v.alerts:
            # true, and a pending rule under it says what may become one
            t.append("✓ no active alerts", style="green")
            more: list[str] = []
            if n_pend + n_warn > rows - 1:  # more than rows: the last row (or two) counts the rest, pending kept first
                keep, more = self._overflow(
                    rows - 1, lambda k: ([], max(0, n_pend - k), n_warn - max(0, k - n_pend)), width
                )
                pending, warnings = pending[:keep], warnings[: max(0, keep - n_pend)]
            # a line each; then the pending rules' messages, then the warnings share what is left, each wrapped
            spare = rows - 1 - len(more) - len(pending) - len(warnings)
            pend_lines = self._message_lines([p.message for p in pending], width, spare)
            spare -= sum(pend_lines)
            lines = 1 + max(0, spare) // max(1, len(warnings))
            self._pending(t, pending, width, pend_lines)
            self._start_warnings(t, warnings, width, lines)
            self._append_more(t, more, critical=False)
            return t
        # the most severe first, in the engine's order within a severity (sorted is stable)
        alerts = sorted(v.alerts, key=lambda a: SEVERITY_ORDER.get(a.severity, 3))
        n_alerts = len(alerts)
        if n_alerts + n_pend + n_warn > rows:
            # Not even a line each: the last row says how many are hidden and where all of them are (cut off
            # silently, a critical alert below the panel's edge went unseen). Alerts, then pending rules, then start
            # warnings, their first lines before any message
            keep, more = self._overflow(
                rows,
                lambda k: (
                    alerts[k:],
                    n_pend - min(n_pend, max(0, k - n_alerts)),
                    n_warn - max(0, k - n_alerts - n_pend),
                ),
                width,
            )
            hidden, shown = alerts[keep:], alerts[:keep]
            pending = pending[: max(0, keep - n_alerts)]
            warnings = warnings[: max(0, keep - n_alerts - n_pend)]
            self._alerts(t, shown, width, [0] * len(shown))
            self._pending(t, pending, width, [0] * len(pending))
            self._start_warnings(t, warnings, width, 1)
            self._append_more(t, more, critical=any(SEVERITY_ORDER.get(a.severity) == 0 for a in hidden))
            return t
        # Every alert gets its rule line, every pending rule and start warning one line; the alerts' messages share
        # what is left of the panel, wrapped at words (on one unwrapped line each showed its first width's worth,
        # however tall the panel), and the pending rules' messages what they leave. Too few rows for a message line
        # each: the most severe alerts get theirs
        spare = rows - n_alerts - n_pend - n_warn
        per = spare // n_alerts
        alert_lines = [per] * n_alerts if per else [int(n < spare) for n in range(n_alerts)]
        used = sum(len(fitted(a.message, width, k)) for a, k in zip(alerts, alert_lines, strict=True) if k)
        self._alerts(t, alerts, width, alert_lines)
        self._pending(t, pending, width, self._message_lines([p.message for p in pending], width, spare - used))
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

    def _pending(self, t: Text, pending: list[PendingView], width: int, msg_lines: list[int]) -> None:
        """Each pending rule's line, dim ("pending throughput_low held 40 s of 300 s": the held part whole or
        shorter, never wrapped), then its message in its share of ``msg_lines`` (0: none)."""
        for p, lines in zip(pending, msg_lines, strict=True):
            if t.plain and not t.plain.endswith("\n"):
                t.append("\n")
            head = f"pending {p.rule}"
            t.append("pending ", style="grey50")
            t.append(p.rule, style="grey62")
            held = [f" {h}" for h in p.held if len(head) + 1 + len(h) <= width]
            if held:
                t.append(held[0], style="grey50")
            if lines:
                t.append("\n" + "\n".join(fitted(p.message, width, lines)), style="grey50")

    @staticmethod
    def _message_lines(messages: list[str], width: int, spare: int) -> list[int]:
        """How many rows each message gets of ``spare``: an equal share, a short one giving back what it does not
        use to those after it; too few for one each, the first ones get theirs."""
        out = []
        for n, message in enumerate(messages):
            share = max(0, spare) // (len(messages) - n)
            got = len(fitted(message, width, share)) if share else 0
            out.append(got)
            spare -= got
        return out

    def _start_warnings(self, t: Text, warnings: list[str], width: int, lines: int) -> None:
        """What the trainer warned about as this attempt started: not alerts, but they stay in view all run
        (the events pane scrolls them away), each in ``lines`` rows at most."""
        for w in warnings:
            said = fitted("at start " + w, width, lines)
            t.append("\nat start", style="yellow")
            t.append(said[0].removeprefix("at start"), style="grey62")
            for line in said[1:]:
                t.append("\n" + line, style="grey62")

    def _more(self, hidden: list[AlertView], pending: int, warnings: int, width: int, rows: int) -> list[str]:
        """The line(s) that count what the panel has no row for, and name the command that lists it all."""
        if not hidden and not pending and not warnings:
            return []
        critical = sum(SEVERITY_ORDER.get(a.severity) == 0 for a in hidden)
        return more_lines(len(hidden), critical, warnings, self.status_cmd, width, rows, pending=pending)

    def _overflow(
        self, rows: int, hidden_at: Callable[[int], tuple[list[AlertView], int, int]], width: int
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
