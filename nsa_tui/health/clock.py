"""Whose clock a run's records are on. Records carry the writer's `ts`; a heartbeat file's mtime is stamped by
the filesystem the reader sees when the record is appended. The two agree within write latency; far apart, the
writer's clock differs from this machine's (an NFS/sshfs mount or an rsync copy of another box's runs, one record
with a bad ts), and the records' own ages mean nothing: a future record read as "heartbeat 0s ago" on a hung run.
Pure Python: the readers put the mtimes in RunHistory.heartbeat_mtimes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from nsa_tui.runs.history import RankState, RunHistory

# larger than a record's write latency and the remote reader's mtime resolution (whole seconds, a minute where
# the host has only POSIX ls); a skew smaller than this changes no verdict (heartbeat_stale's floor is 120 s)
CLOCK_SKEW_TOLERANCE_S = 120.0


@dataclass(frozen=True)
class RankClock:
    """One rank's newest record placed on the reader's clock."""

    rank: int
    seen: float | None  # when its newest record was written, on the reader's clock; None: cannot be told
    skew_s: float  # its records' clock minus the reader's (0 when they agree): positive when ahead
    against: str  # what the skew was measured against: "file" (its heartbeat's mtime) or "now"


def rank_clock(h: RunHistory, st: RankState, now: float) -> RankClock:
    """Where ``st``'s newest record lies on the reader's clock: its ts, unless its heartbeat file's mtime or now
    says the writer's clock is elsewhere."""
    ts, mtime = st.last_ts, h.heartbeat_mtimes.get(st.rank)
    if ts is None:
        return RankClock(st.rank, mtime, 0.0, "file")
    if mtime is not None and abs(ts - mtime) > CLOCK_SKEW_TOLERANCE_S:
        return RankClock(st.rank, min(mtime, now), ts - mtime, "file")
    if ts - now > CLOCK_SKEW_TOLERANCE_S:  # the file agrees (a copy, or no mtime): no time on this clock for it
        return RankClock(st.rank, None, ts - now, "now")
    return RankClock(st.rank, ts, 0.0, "file")


def attempt_clocks(h: RunHistory, now: float) -> dict[int, RankClock]:
    return {r: rank_clock(h, st, now) for r, st in h.attempt_ranks.items()}


def on_reader_clock(h: RunHistory, rank: int, ts: float | None, now: float) -> float | None:
    """``ts``, a record of ``rank``'s, on the reader's clock: itself where the rank's records agree with it; where
    they do not, the rank's file's last write (a shift by the skew would move every record by one glitch's year);
    None when it cannot be placed (ahead of now, no file that disagrees)."""
    if ts is None:
        return None
    st = h.attempt_ranks.get(rank)
    clock = rank_clock(h, st, now) if st is not None else None
    if clock is not None and clock.skew_s:
        return clock.seen
    return None if ts - now > CLOCK_SKEW_TOLERANCE_S else ts


def past_on_reader_clock(h: RunHistory, ts: float, now: float) -> float | None:
    """An earlier record of rank 0's (its boot, a phase) on the reader's clock: moved by rank 0's skew, as its newest
    record is (a boot on a clock ahead started stuck_at_start's count in the future); None where rank 0's records
    cannot be placed at all."""
    st = h.attempt_ranks.get(0)
    clock = rank_clock(h, st, now) if st is not None else None
    if clock is None or not clock.skew_s:
        return ts
    return ts - clock.skew_s if clock.seen is not None else None


# an interval between two progress points longer than this many times the steps' own time (dt_step_s) plus the
# tolerance is a clock stepped forward, not a pause: an eval or checkpoint takes minutes, not ten times the window
JUMP_FACTOR = 10.0


def clock_jumps_s(points: list[tuple[int, float, float | None]]) -> float:
    """The seconds by which a clock stepped forward between these (step, ts, dt_step_s) progress points, in order:
    the excess of each interval over its steps' own time where it is JUMP_FACTOR times that and more than
    CLOCK_SKEW_TOLERANCE_S longer (the trainer's dt_step_s is on its monotonic clock). 0 without dt_step_s."""
    jumps = 0.0
    for (s0, t0, _), (s1, t1, dt) in itertools.pairwise(points):
        if dt is None or not dt > 0 or s1 <= s0:
            continue
        own = (s1 - s0) * dt
        if t1 - t0 > JUMP_FACTOR * own + CLOCK_SKEW_TOLERANCE_S:
            jumps += t1 - t0 - own
    return jumps
