"""Growable numeric columns for charts: appending is amortised O(1), reading is a numpy view."""

from __future__ import annotations

import numpy as np


class Series:
    """x/y points in arrival order. ``version`` changes on every mutation (cache key)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.n = 0
        self.generation = 0  # bumps when points are removed (caches must start over)

    def _grow(self, need: int) -> None:
        cap = len(self._x)
        if need <= cap:
            return
        new = max(need, cap * 2)
        for name in ("_x", "_y"):
            old = getattr(self, name)
            grown = np.empty(new, dtype=np.float64)
            grown[: self.n] = old[: self.n]
            setattr(self, name, grown)

    def append(self, x: float, y: float) -> None:
        self._grow(self.n + 1)
        self._x[self.n] = x
        self._y[self.n] = y
        self.n += 1

    def adopt(self, xs: np.ndarray, ys: np.ndarray) -> None:
        """Take whole float64 arrays as the points of an empty series, without copying them
        (the next append copies into a bigger buffer, so shared arrays are never written)."""
        assert self.n == 0 and len(xs) == len(ys)
        self._x, self._y = xs, ys
        self.n = len(xs)

    def extend(self, xs, ys) -> None:
        xs = np.asarray(xs, dtype=np.float64)
        ys = np.asarray(ys, dtype=np.float64)
        k = len(xs)
        self._grow(self.n + k)
        self._x[self.n : self.n + k] = xs
        self._y[self.n : self.n + k] = ys
        self.n += k

    def clear(self) -> None:
        self.n = 0
        self.generation += 1

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]

    def __len__(self) -> int:
        return self.n
