"""The pace an ETA counts with: seconds a step, from a run's newest progress intervals, robust to a pause.

An interval's mean step time takes in whatever held the run inside it: a rank stopped with SIGSTOP, a debugger
breakpoint, an evaluation or checkpoint (where the step times come from timestamps, not the trainer's dt_step_s). A
plain mean over the last 50 intervals kept one 2.5-minute pause in the ETA for 50 records: `ETA 4h22m` where 30
minutes was right, and still `1h38m` 50 steps after the run was back to its pace. So:

- the run's usual step time is the median of its newest USUAL_INTERVALS intervals (weighted by their steps);
- an interval more than OUTLIER_FACTOR times that is a pause, left out of the pace;
- unless the newest PERSIST_INTERVALS intervals all are: the run got that much slower, and its pace is theirs;
- the pace is the mean of the newest RECENT_INTERVALS intervals that remain, so a slowdown below the factor shows
  from its first interval and in full after RECENT_INTERVALS of them.

Pure Python: the health engine feeds it (engine.step_rate), `nsa status` and `nsa watch` show what it gives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

USUAL_INTERVALS = 50
RECENT_INTERVALS = 10
OUTLIER_FACTOR = 3.0
PERSIST_INTERVALS = 3


@dataclass(frozen=True)
class Interval:
    """The steps between two progress records and the mean seconds each took."""

    steps: float
    step_s: float

    def __post_init__(self) -> None:
        if not (self.steps > 0 and math.isfinite(self.step_s) and self.step_s > 0):
            raise ValueError(f"an interval needs steps > 0 and a finite step time > 0, not {self}")


def usual_step_s(intervals: Sequence[Interval]) -> float:
    """The step-weighted median step time of the newest USUAL_INTERVALS intervals (at least one)."""
    recent = sorted(intervals[-USUAL_INTERVALS:], key=lambda i: i.step_s)
    half = sum(i.steps for i in recent) / 2
    seen = 0.0
    for i in recent:
        seen += i.steps
        if seen >= half:
            return i.step_s
    return recent[-1].step_s


def _mean_step_s(intervals: Sequence[Interval]) -> float:
    return sum(i.steps * i.step_s for i in intervals) / sum(i.steps for i in intervals)


def pace_step_s(intervals: Sequence[Interval]) -> float | None:
    """Seconds a step at the run's current pace (module docstring); None without an interval."""
    if not intervals:
        return None
    limit = OUTLIER_FACTOR * usual_step_s(intervals)
    newest = intervals[-PERSIST_INTERVALS:]
    if len(newest) == PERSIST_INTERVALS and all(i.step_s > limit for i in newest):
        return _mean_step_s(newest)  # not a pause: the run is this slow now
    kept = [i for i in intervals if i.step_s <= limit]
    return _mean_step_s(kept[-RECENT_INTERVALS:])
