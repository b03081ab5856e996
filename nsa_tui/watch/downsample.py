"""Reduce many points to one (min, max) pair per screen column so spikes never vanish.

A 1,000,000-point loss curve drawn in 60 columns keeps, for every column, the lowest and
the highest value that fell into it: a single NaN-free spike still reaches the top of its
column. Pure numpy; no Textual.
"""

from __future__ import annotations

import math

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


def accumulate(
    mins: np.ndarray, maxs: np.ndarray, bad: np.ndarray, xs: np.ndarray, ys: np.ndarray, x_lo: float, x_hi: float
) -> None:
    """Fold more points into existing per-column min/max arrays (in place)."""
    if len(xs) == 0:
        return
    ncols = len(mins)
    finite_x = np.isfinite(xs)
    if not finite_x.all():
        xs, ys = xs[finite_x], ys[finite_x]
    cols = column_of(xs, x_lo, x_hi, ncols)
    ok = np.isfinite(ys)
    if not ok.all():
        bad[cols[~ok]] = True
        cols, ys = cols[ok], ys[ok]
    if len(ys) == 0:
        return
    lo = np.full(ncols, np.inf)
    hi = np.full(ncols, -np.inf)
    if len(cols) > 1 and (np.diff(cols) >= 0).all():
        # Sorted columns (the usual case): reduceat over run starts is much faster than ufunc.at.
        starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
        lo[cols[starts]] = np.minimum.reduceat(ys, starts)
        hi[cols[starts]] = np.maximum.reduceat(ys, starts)
    else:
        np.minimum.at(lo, cols, ys)
        np.maximum.at(hi, cols, ys)
    got = np.isfinite(lo)
    mins[got] = np.fmin(mins[got], lo[got])
    maxs[got] = np.fmax(maxs[got], hi[got])


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
        if series.n > self._done:
            xs = series.x[self._done :]
            ys = series.y[self._done :]
            accumulate(self.mins, self.maxs, self.bad, xs, ys, x_lo, x_hi)
            self._done = series.n


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
