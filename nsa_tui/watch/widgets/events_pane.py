"""Boot, phases, checkpoints, evals, stalls, the end; then the tail of train.log/console.log."""

from __future__ import annotations

import math
import time

from rich.text import Text
from textual.widget import Widget

from nsa_train.telemetry import schema
from nsa_tui import fmt

KIND_STYLE = {
    schema.KIND_BOOT: "cyan",
    schema.KIND_PHASE: "blue",
    schema.KIND_CHECKPOINT: "green",
    schema.KIND_EVAL: "yellow",
    schema.KIND_STALL: "bold red",
    schema.KIND_END: "bold magenta",
    schema.KIND_ERROR: "bold red",
}


def _rank0(ev) -> bool:
    """Rank 0's event, or one of a format without ranks."""
    return ev.rank in (0, None)


def describe_event(ev) -> str:
    text = _describe(ev)
    return text if _rank0(ev) else f"{text} (rank {ev.rank})"


def pane_events(events: list, limit: int) -> list:
    """The newest ``limit`` events in time order, for the pane. Every rank writes its own phase, eval and end
    records, and each rank's file is read in turn: an event of another rank that rank 0 also logged (same kind,
    step and words) is dropped, what only it said (its error, its stall) stays, marked with its rank."""
    recent = sorted(events[-4 * limit :], key=lambda e: e.ts if e.ts is not None else -math.inf)
    said = {(e.kind, e.step, _describe(e, warnings=False)) for e in recent if _rank0(e)}
    kept = [e for e in recent if _rank0(e) or (e.kind, e.step, _describe(e, warnings=False)) not in said]
    return kept[-limit:]


def _describe(ev, *, warnings: bool = True) -> str:
    f = ev.fields or {}
    if ev.kind == schema.KIND_PHASE:
        # a phase is logged when it starts and, for some, again with done=true: say which
        text = f"phase {f.get('phase') or f.get('name') or '?'}" + (" done" if f.get("done") is True else "")
        # the start's warnings (config traps, a stale .HALT, a resume that moves the lr) belong next to it; a rank
        # that did not see the same ones (only one removes a stale .HALT) still repeats rank 0's phase
        said = f.get("warnings") if warnings and isinstance(f.get("warnings"), list) else []
        return text + "".join(f" · warning: {w}" for w in said if w)
    if ev.kind == schema.KIND_EVAL:
        return f"eval val_loss {fmt.num(f.get('val_loss'), 4)}"
    if ev.kind == schema.KIND_CHECKPOINT:
        return f"checkpoint {f.get('path', '')}"
    if ev.kind == schema.KIND_STALL:
        return f"stall: no progress for {fmt.duration(f.get('seconds_since_progress'))}"
    if ev.kind == schema.KIND_END:
        return f"end {f.get('reason', '')}"
    if ev.kind == schema.KIND_ERROR:
        return f"error {f.get('message', '')}"
    if ev.kind == schema.KIND_BOOT:
        return f"boot world={f.get('world_size', '?')}"
    return ev.kind


def split_rows(height: int, n_events: int, n_logs: int) -> tuple[int, int]:
    """(event rows, log rows): the newest events keep at least half the pane when they have that many, the
    log tail fills the rest, and no row stays blank while either has lines left to show."""
    ev = min(n_events, height - min(n_logs, height // 2))
    return ev, min(n_logs, height - ev)


class EventsPane(Widget):
    DEFAULT_CSS = """
    EventsPane { height: 1fr; border: round $primary; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.border_title = "events (UTC) · log"
        self.events: list = []
        self.logs: list[tuple[str, str]] = []

    def show(self, events: list, logs: list[tuple[str, str]]) -> None:
        if events == self.events and logs == self.logs:
            return
        self.events, self.logs = events, logs
        self.refresh()

    def render(self) -> Text:
        h = max(1, self.size.height)
        n_ev, n_logs = split_rows(h, len(self.events), len(self.logs))
        t = Text(no_wrap=True, overflow="ellipsis")
        rows: list[Text] = []
        for ev in self.events[-n_ev:] if n_ev > 0 else []:
            r = Text()
            when = time.strftime("%H:%M:%S", time.gmtime(ev.ts)) if ev.ts else "--:--:--"
            r.append(when + " ", style="grey50")
            r.append(f"{ev.step if ev.step is not None else '-':>6} ", style="grey62")
            r.append(describe_event(ev), style=KIND_STYLE.get(ev.kind, ""))
            rows.append(r)
        for _name, line in self.logs[-n_logs:] if n_logs else []:
            rows.append(Text(line, style="grey70"))
        for i, r in enumerate(rows[-h:]):
            if i:
                t.append("\n")
            t.append_text(r)
        return t
