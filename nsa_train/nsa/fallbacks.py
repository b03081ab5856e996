"""Fallback counters: every time a faster path cannot run and a slower one is used.

Never silent: the trainer copies ``snapshot()`` into each progress record's
``fallbacks`` field ({name: cumulative count}), and `fallbacks_rising` fires on it.
Counting is per process and thread-safe; it costs a dict increment. A resumed run starts from the counts
its checkpoint saved (``restore``), so a run's counters never go down.
"""

from __future__ import annotations

import threading
from collections import Counter

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_reasons: dict[str, str] = {}


def count(name: str, reason: str = "") -> None:
    """Record one fallback; ``name`` like 'selection.triton->fast', reason the first cause seen."""
    with _lock:
        _counts[name] += 1
        if reason and name not in _reasons:
            _reasons[name] = reason


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def reasons() -> dict[str, str]:
    with _lock:
        return dict(_reasons)


def restore(counts: dict[str, int]) -> None:
    """Add a checkpoint's counts (a resumed run's counters continue the run's, see the trainer)."""
    with _lock:
        _counts.update({str(k): int(v) for k, v in counts.items()})


def reset() -> None:
    with _lock:
        _counts.clear()
        _reasons.clear()
