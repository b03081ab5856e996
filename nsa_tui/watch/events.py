"""How the events pane words the telemetry events, and which it shows (pure: no Textual)."""

from __future__ import annotations

import math
from typing import Any

from nsa_train.telemetry import schema
from nsa_tui import fmt


def _rank0(ev: Any) -> bool:
    """Rank 0's event, or one of a format without ranks."""
    return ev.rank in (0, None)


def describe_event(ev: Any) -> str:
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


def _describe(ev: Any, *, warnings: bool = True) -> str:
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
    if ev.kind == schema.KIND_MOVED:
        return f"run directory moved from {f.get(schema.MOVED_FROM, '?')} to {f.get(schema.MOVED_TO, '?')}"
    if ev.kind == schema.KIND_BOOT:
        return f"boot world={f.get('world_size', '?')}"
    return ev.kind
