"""Run name, state (a start's phase, a pending halt), step/total with a progress bar, ETA, elapsed (the current
attempt's, said so after a resume), tokens (the run's), heartbeat age, attention path.

Two one-line widgets under one background: a new step repaints the first line only, the
clock (elapsed, heartbeat age) the second; the screen's most frequent update stays small."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget

from nsa_tui import fmt
from nsa_tui.health.stop_signal import BEFORE_THE_HALT, NOT_REQUESTED
from nsa_tui.runs.history import corrupt_lines_text
from nsa_tui.styles import HEALTH_STYLE, state_style
from nsa_tui.watch.layout import progress_bar
from nsa_tui.watch.widgets.text_line import TextLine

NAME_MIN = 8  # a long run name is never clipped shorter than this


class RunHeader(Widget):
    DEFAULT_CSS = """
    RunHeader { height: 2; background: $boost; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.info: dict = {}

    def compose(self) -> ComposeResult:
        yield TextLine()
        yield TextLine()

    def show(self, info: dict) -> None:
        if info == self.info:
            return
        self.info = info
        self._show_lines()

    def on_mount(self) -> None:
        self._show_lines()

    def on_resize(self) -> None:
        self._show_lines()  # the progress bar's width follows the header's

    def _show_lines(self) -> None:
        lines = list(self.query_children(TextLine))
        if len(lines) == 2:
            for widget, text in zip(lines, self.text().split("\n"), strict=False):
                widget.show(text)

    @property
    def shown(self) -> str:
        """The two lines as they are on screen."""
        return "\n".join(w.text.plain for w in self.query_children(TextLine))

    def text(self) -> Text:
        """Both lines, as one Text."""
        name = str(self.info.get("name", "?"))
        w = self.size.width
        # a long name gets about a third of the width, less if state, step and ETA would not fit beside it
        room = max(NAME_MIN, w // 3)
        t = self._text(fmt.clip(name, room))
        over = len(t.plain.split("\n", 1)[0]) - w
        if over > 0 and len(name) > NAME_MIN:
            t = self._text(fmt.clip(name, max(NAME_MIN, min(room, len(name)) - over)))
        return t

    def _text(self, name: str) -> Text:
        i = self.info
        w = self.size.width
        t = Text(no_wrap=True, overflow="crop")
        t.append(f" {name} ", style="bold reverse")
        state = i.get("state", "unknown")
        t.append(f" {state} ", style=state_style(state))
        phase = i.get("phase")
        if phase:  # a start's phase and its time in it: a slow compile is not a hang
            t.append(f" phase {phase}")
        stop_signal = i.get("stop_signal")
        if stop_signal:  # halted, not on request: a killed tmux server's SIGHUP read as the user's own `nsa halt`
            said = BEFORE_THE_HALT if i.get("halt_overtaken") else NOT_REQUESTED
            t.append(f" by {stop_signal}, {said}", style="bold yellow")
        health = i.get("health", "")
        if health:
            t.append(f" {health}", style=HEALTH_STYLE.get(health, ""))
        halt = i.get("halt")
        if halt:  # a stop asked for that the run has not made yet: `stalled critical` alone hid it
            t.append(f" {halt}", style="bold yellow")
        step, total = i.get("step"), i.get("total")
        t.append(f"  step {step if step is not None else '—'}" + (f"/{total}" if total else ""))
        if total and step is not None:
            bar_w = max(6, min(30, w - len(t.plain) - 50))
            t.append(" ")
            t.append(progress_bar(step / total, bar_w), style="green")
            t.append(f" {100 * step / total:.0f}%")
        t.append(f"  ETA {fmt.duration(i.get('eta'))}")
        t.append("\n")
        t.append(f" elapsed {fmt.duration(i.get('elapsed'))}")
        if i.get("resumed"):  # the tokens beside it are the run's, earlier attempts' included
            t.append(" (this attempt)", style="grey62")
        t.append(f"  tokens {fmt.num(i.get('tokens'))}")
        at = i.get("tokens_step")
        if at is not None and at != i.get("step"):  # the count is of the last progress record, not of `step`
            t.append(f" at step {at}", style="grey62")
        age = i.get("hb_age")
        t.append("  heartbeat ")
        stale = (age or 0) > 60
        ahead = i.get("hb_ahead")
        if age is None and ahead is not None:  # records dated ahead of this clock: no age, and not "none yet"
            t.append(f"dated {fmt.duration(ahead)} ahead", style="yellow")
        else:
            t.append(f"{fmt.duration(age)} ago" if age is not None else "none yet", style="yellow" if stale else "")
        corrupt = i.get("corrupt", 0)
        if corrupt:
            t.append(f"  {corrupt_lines_text(corrupt)}", style="bold yellow")
        unreadable = i.get("unreadable")
        if unreadable:  # what they would have said is missing: `nsa status` says why each cannot be read
            t.append(f"  unreadable {', '.join(unreadable)}", style="bold yellow")
        newer = i.get("newer")
        if newer:  # drawn from as this version's: the nsa here reads it, so it is the one to update
            # each version with its own files: `(v2) run.json; (v3) summary.json`
            said = "; ".join(
                f"(v{v}) {', '.join(n for n, nv in newer.items() if nv == v)}" for v in sorted(set(newer.values()))
            )
            t.append(f"  newer telemetry {said}: update nsa here", style="bold yellow")
        src = i.get("source", "")
        if src:
            bad = any(w in src for w in ("disconnected", "cannot read", "read error"))
            t.append(f"  [{src}]", style="red" if bad else "grey50")
        init = i.get("init_from")
        if init:  # a loss curve that starts low is another run's training: `nsa status` names the file
            t.append(f"  weights from {init}", style="grey50")
        attention = i.get("attention")
        if attention:  # last: the first thing a narrow terminal crops
            t.append(f"  attention {attention}", style="grey50")
        return t
