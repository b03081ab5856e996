"""Column widths for a rich table printed by a command (`nsa runs`): its no-wrap columns (names, numbers) whole,
its free-text columns wrapped at word boundaries first, and, when even that does not fit, the table wider than the
terminal (which wraps the lines) rather than a cell cut to "…". Rich's own squeeze cuts no-wrap cells and shrinks a
wrapping column below its longest word (`process_e…`), so the widths are set here and rich only prints them."""

from __future__ import annotations

import os
from typing import Any

_UNBOUNDED = 1 << 16


def output_width(console: Any) -> int | None:
    """The width to fit a table to: the terminal's, or $COLUMNS where set (rich reads it too); None for a pipe or a
    file without COLUMNS, where whole rows are printed (as `git` and `ps -ww` do) rather than an 80-column guess."""
    isatty = getattr(console.file, "isatty", None)
    try:
        terminal = bool(isatty and isatty())
    except (OSError, ValueError):  # a closed or odd stream: no terminal to fit
        terminal = False
    if terminal or os.environ.get("COLUMNS", "").strip().isdigit():
        return int(console.width)
    return None


def fit_table(console: Any, table: Any, width: int | None) -> int:
    """Fix each column's width of ``table`` for an output ``width`` (None: no limit) and return the width to print
    it at: ``width``, or the table's least width where that is wider (its lines then wrap in the terminal, whole)."""
    from rich.measure import Measurement

    options = console.options.update_width(_UNBOUNDED)
    lows: list[int] = []
    highs: list[int] = []
    for column in table.columns:
        ranges = [Measurement.get(console, options, cell) for cell in (column.header, *column.cells)]
        high = max(r.maximum for r in ranges)
        # a no-wrap cell's least width is all of it: rich measures it by its longest word, then cuts the rest
        lows.append(high if column.no_wrap else max(r.minimum for r in ranges))
        highs.append(high)
    for column, high in zip(table.columns, highs, strict=True):
        column.width = high
    whole = Measurement.get(console, options, table).maximum
    if width is None or whole <= width:
        return max(whole, width or 0)
    padding = whole - sum(highs)
    wrapping = [i for i, c in enumerate(table.columns) if not c.no_wrap]
    room = width - padding - sum(h for i, h in enumerate(highs) if i not in wrapping)
    widths = _shared(room, [lows[i] for i in wrapping], [highs[i] for i in wrapping])
    for i, w in zip(wrapping, widths, strict=True):
        table.columns[i].width = w
    return max(width, padding + sum(highs) - sum(highs[i] for i in wrapping) + sum(widths))


def _shared(room: int, lows: list[int], highs: list[int]) -> list[int]:
    """Widths for the wrapping columns within ``room``: the widest narrowed first, none below its least width (its
    longest word); each at its least when even that does not fit."""

    def at(cap: int) -> list[int]:
        return [max(lo, min(hi, cap)) for lo, hi in zip(lows, highs, strict=True)]

    cap = max(highs, default=0)
    while cap > 0 and sum(at(cap)) > room:
        cap -= 1
    return at(cap)
