"""Reduce many points to one (min, max) pair per screen column so spikes never vanish.

A 1,000,000-point loss curve drawn in 60 columns keeps, for every column, the lowest and
the highest value that fell into it: a single NaN-free spike still reaches the top of its
column. Pure numpy; no Textual.
"""

from __future__ import annotations

import math
import weakref

import numpy as np


def column_of(xs: np.ndarray, x_lo: float, x_hi: float, ncols: int) -> np.ndarray:
    """Column index 0..ncols-1 of every x (clipped at both ends)."""
    span = x_hi - x_lo
    if span <= 0 or not math.isfinite(span):
        return np.zeros(len(xs), dtype=np.int64)
    cols = np.floor((xs - x_lo) * (ncols / span)).astype(np.int64)
    return np.clip(cols, 0, ncols - 1)


def min_max_columns(
    xs: np.ndarray, ys: np.ndarray, x_lo: float, x_hi: float, ncols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column: min y, max y (NaN where the column got no finite value), and whether a
    non-finite y (NaN/inf: a diverged loss) fell into it."""
    mins = np.full(ncols, np.nan)
    maxs = np.full(ncols, np.nan)
    bad = np.zeros(ncols, dtype=bool)
    accumulate(mins, maxs, bad, xs, ys, x_lo, x_hi)
    return mins, maxs, bad


class Binning:
    """Where the points of one x column fall: computed once and shared by every line drawn
    against that column (a 1M-point first draw of 14 lines bins its x axis once, not 14 times)."""

    def __init__(self, xs: np.ndarray, x_lo: float, x_hi: float, ncols: int) -> None:
        finite = np.isfinite(xs)
        self.mask = None if finite.all() else finite  # the points with a finite x (None: all)
        self.cols = column_of(xs if self.mask is None else xs[self.mask], x_lo, x_hi, ncols)
        c = self.cols
        self.starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]]) if len(c) > 1 and (np.diff(c) >= 0).all() else None


def accumulate(
    mins: np.ndarray,
    maxs: np.ndarray,
    bad: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    x_lo: float,
    x_hi: float,
    binning: Binning | None = None,
) -> None:
    """Fold more points into existing per-column min/max arrays (in place). ``binning``: the
    points' columns, already computed from these very xs and range."""
    if len(xs) == 0:
        return
    ncols = len(mins)
    b = binning if binning is not None else Binning(xs, x_lo, x_hi, ncols)
    cols = b.cols
    if b.mask is not None:
        ys = ys[b.mask]
    lo = np.full(ncols, np.inf)
    hi = np.full(ncols, -np.inf)
    ok = np.isfinite(ys)
    if ok.all() and b.starts is not None and len(ys):
        # Sorted columns (the usual case): reduceat over run starts is much faster than ufunc.at.
        lo[cols[b.starts]] = np.minimum.reduceat(ys, b.starts)
        hi[cols[b.starts]] = np.maximum.reduceat(ys, b.starts)
    else:
        if not ok.all():
            bad[cols[~ok]] = True
            cols, ys = cols[ok], ys[ok]
        if len(ys) == 0:
            return
        if len(cols) > 1 and (np.diff(cols) >= 0).all():
            starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
            lo[cols[starts]] = np.minimum.reduceat(ys, starts)
            hi[cols[starts]] = np.maximum.reduceat(ys, starts)
        else:
            np.minimum.at(lo, cols, ys)
            np.maximum.at(hi, cols, ys)
    got = np.isfinite(lo)
    mins[got] = np.fmin(mins[got], lo[got])
    maxs[got] = np.fmax(maxs[got], hi[got])


SHARE_MIN_POINTS = 4096  # below this, binning is cheap enough to redo per line
# x column (a Series) -> {(generation, n, x_lo, x_hi, ncols): Binning}; dies with the column
_shared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def shared_binning(x_col, n: int, x_lo: float, x_hi: float, ncols: int) -> Binning:
    """The Binning of the first n points of an append-only x column, shared by all its lines."""
    per_col = _shared.setdefault(x_col, {})
    key = (x_col.generation, n, x_lo, x_hi, ncols)
    b = per_col.get(key)
    if b is None:
        per_col.clear()  # only the newest layout is worth keeping
        b = per_col[key] = Binning(x_col.y[:n], x_lo, x_hi, ncols)
    return b


def nice_ceil(x: float) -> float:
    """The next 1-2-5 round number >= x (axis ends that do not move on every new point)."""
    if x <= 0 or not math.isfinite(x):
        return 1.0
    e = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * e >= x:
            return m * e
    return 10 * e


class ColumnCache:
    """Incremental min/max columns of one Series: only points appended since the last call
    are folded in, unless the x range, the width or the series generation changed."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._done = 0
        self.mins = np.empty(0)
        self.maxs = np.empty(0)
        self.bad = np.empty(0, dtype=bool)

    def update(self, series, x_lo: float, x_hi: float, ncols: int) -> None:
        key = (x_lo, x_hi, ncols, series.generation)
        if key != self._key or series.n < self._done:
            self._key = key
            self._done = 0
            self.mins = np.full(ncols, np.nan)
            self.maxs = np.full(ncols, np.nan)
            self.bad = np.zeros(ncols, dtype=bool)
        # n once: another run's reader thread may extend its columns while the compare overlay reads them, and
        # x, y and n read one after the other would then disagree (misaligned points, or points never folded in)
        n = series.n
        if n > self._done:
            xs = series.x[self._done : n]
            ys = series.y[self._done : n]
            x_col = getattr(series, "x_column", None)  # lines of one table share their x column's binning
            binning = None
            if self._done == 0 and x_col is not None and n >= SHARE_MIN_POINTS:
                binning = shared_binning(x_col, n, x_lo, x_hi, ncols)
            accumulate(self.mins, self.maxs, self.bad, xs, ys, x_lo, x_hi, binning)
            self._done = n


def moving_average(ys: np.ndarray, k: int) -> np.ndarray:
    """Trailing mean of the finite values among the last k points (fewer at the start);
    a NaN point stays NaN (a diverged step must not be smoothed away)."""
    if k <= 1 or len(ys) == 0:
        return ys.copy()
    finite = np.isfinite(ys)
    vals = np.where(finite, ys, 0.0)
    csum = np.concatenate(([0.0], np.cumsum(vals)))
    ccount = np.concatenate(([0], np.cumsum(finite)))
    idx = np.arange(1, len(ys) + 1)
    lo = np.maximum(idx - k, 0)
    count = ccount[idx] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (csum[idx] - csum[lo]) / count
    out[~finite] = np.nan
    return out
