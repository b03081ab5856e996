"""When each stall ended: the first record of a later step from the stalled rank (progress or liveness).

The watchdog's stall record says only that no step finished for monitor.stall_s; how long the hang lasted is known
only from what that rank wrote next. RunHistory keeps no per-rank record history, so this is tracked as the records
are fed (each rank's file is read in time order), bounded by the number of stalls.
"""

from __future__ import annotations

from nsa_train.telemetry import schema
from nsa_tui.runs.records import Normalised

STEPPED_KINDS = (schema.KIND_PROGRESS, schema.KIND_LIVENESS)


class StallEnds:
    """Per stall record (rank, ts): the time of its rank's first later record of a later step."""

    def __init__(self) -> None:
        self.progress_at: dict[tuple[int, float], float] = {}
        self._open: dict[int, list[tuple[float, int]]] = {}  # rank: its stalls (ts, step) with no later step yet

    def see(self, n: Normalised) -> None:
        if n.rank is None or n.ts is None:
            return
        if n.kind == schema.KIND_BOOT:  # a new process: the old one's hang ended unseen (killed, crashed)
            self._open.pop(n.rank, None)
        elif n.kind == schema.KIND_STALL and n.step is not None:
            self._open.setdefault(n.rank, []).append((n.ts, n.step))
        elif n.kind in STEPPED_KINDS and n.step is not None and (stalls := self._open.get(n.rank)):
            still = []
            for ts, step in stalls:
                if n.step > step and n.ts >= ts:
                    self.progress_at[(n.rank, ts)] = n.ts
                else:
                    still.append((ts, step))
            self._open[n.rank] = still

    def progress_after(self, rank: int | None, ts: float | None) -> float | None:
        """When the stall of ``rank`` recorded at ``ts`` saw progress again; None when no record says."""
        return self.progress_at.get((rank, ts)) if rank is not None and ts is not None else None
