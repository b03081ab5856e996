"""Render multi-series line charts as rich Text: braille plot, y axis, x axis.

Pure (rich + numpy, no Textual) so that tests can check exactly what is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from rich.text import Text

from nsa_tui.watch import fmt
from nsa_tui.watch.braille import BrailleCanvas
from nsa_tui.watch.downsample import ColumnCache
from nsa_tui.watch.series import Series

Y_LABEL_W = 7


@dataclass
class Line:
    label: str
    color: str
    series: Series
    markers: bool = False  # sparse points (val loss): dots, not a connected line
    cache: ColumnCache = field(default_factory=ColumnCache)


@dataclass
class ChartSpec:
    lines: list[Line]
    x_lo: float
    x_hi: float
    log_y: bool = False
    hline: float | None = None  # a limit drawn across (GPU memory cap)
    hline_label: str = ""
    vline: float | None = None  # a boundary drawn down (end of warmup)
    x_format: Callable[[float], str] = fmt.num
    y_fixed: tuple[float, float] | None = None  # e.g. (0, 1) for shares


def _y_range(cols: list[tuple[np.ndarray, np.ndarray]], spec: ChartSpec) -> tuple[float, float] | None:
    if spec.y_fixed is not None:
        return spec.y_fixed
    lo, hi = math.inf, -math.inf
    for mins, maxs in cols:
        if np.isfinite(mins).any():
            lo = min(lo, float(np.nanmin(mins)))
            hi = max(hi, float(np.nanmax(maxs)))
    if spec.hline is not None:
        h = math.log10(spec.hline) if spec.log_y and spec.hline > 0 else spec.hline
        lo, hi = min(lo, h), max(hi, h)
    if not math.isfinite(lo):
        return None
    pad = (abs(hi) * 0.05 or 1.0) if hi - lo < 1e-12 else (hi - lo) * 0.04
    # never pad a non-negative quantity (lr, memory, shares) below zero
    return (lo - pad if lo - pad >= 0 or lo < 0 or spec.log_y else 0.0), hi + pad


def _log(a: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.log10(a)
    out[~np.isfinite(out)] = np.nan
    return out


def render(spec: ChartSpec, width: int, height: int) -> Text:
    """The chart in exactly ``height`` lines of ``width`` cells (height >= 2)."""
    plot_w = max(1, width - Y_LABEL_W - 1)
    plot_h = max(1, height - 1)
    ncols = plot_w * 2
    cols: list[tuple[np.ndarray, np.ndarray]] = []
    bad_any = np.zeros(plot_w, dtype=bool)
    for line in spec.lines:
        line.cache.update(line.series, spec.x_lo, spec.x_hi, ncols)
        mins, maxs = line.cache.mins, line.cache.maxs
        if spec.log_y:
            mins, maxs = _log(mins), _log(maxs)
        cols.append((mins, maxs))
        bad_any |= line.cache.bad.reshape(plot_w, 2).any(axis=1)
    has_data = any(np.isfinite(mins).any() for mins, _ in cols)
    yr = _y_range(cols, spec) if has_data else None
    canvas = BrailleCanvas(plot_w, plot_h)
    out = Text(no_wrap=True, overflow="crop")
    if yr is None:
        msg = "waiting for data"
        for r in range(plot_h):
            out.append(" " * Y_LABEL_W + "│")
            out.append(msg.center(plot_w) if r == plot_h // 2 else " " * plot_w, style="dim")
            out.append("\n")
        out.append(" " * Y_LABEL_W + "└" + "─" * plot_w)
        return out
    y_lo, y_hi = yr
    dots_y = canvas.dots_y

    def to_dot(v: float) -> int:
        return round((y_hi - v) / (y_hi - y_lo) * (dots_y - 1))

    if spec.vline is not None and spec.x_hi > spec.x_lo:
        vx = int((spec.vline - spec.x_lo) / (spec.x_hi - spec.x_lo) * ncols)
        if 0 <= vx < ncols:
            for y in range(0, dots_y, 2):
                canvas.set(vx, y, "grey42")
    if spec.hline is not None:
        hv = math.log10(spec.hline) if spec.log_y and spec.hline > 0 else spec.hline
        hy = to_dot(hv)
        for x in range(0, ncols, 2):
            canvas.set(x, hy, "red")
    for line, (mins, maxs) in zip(spec.lines, cols, strict=True):
        prev: tuple[int, int] | None = None
        for c in range(ncols):
            if not math.isfinite(mins[c]):
                if not line.markers:
                    continue
                prev = None
                continue
            top, bot = to_dot(maxs[c]), to_dot(mins[c])
            if prev is not None and not line.markers:
                # join to the previous column so a steep curve stays connected
                top, bot = min(top, prev[1]), max(bot, prev[0])
            canvas.vline(c, top, bot, line.color)
            prev = (to_dot(maxs[c]), to_dot(mins[c]))
    labels = _y_labels(y_lo, y_hi, plot_h, spec.log_y)
    for r, row in enumerate(canvas.rows()):
        out.append(labels[r].rjust(Y_LABEL_W)[:Y_LABEL_W], style="grey62")
        out.append("┤" if labels[r] else "│", style="grey42")
        for c, (ch, color) in enumerate(row):
            if r == 0 and bad_any[c]:
                out.append("!", style="bold red")  # a NaN/inf value fell into this column
            else:
                out.append(ch, style=color or "")
        out.append("\n")
    out.append(" " * Y_LABEL_W + "└", style="grey42")
    out.append(_x_axis(spec, plot_w), style="grey62")
    return out


def _y_labels(y_lo: float, y_hi: float, rows: int, log_y: bool) -> list[str]:
    labels = [""] * rows

    def show(v: float) -> str:
        x = 10**v if log_y else v
        text = fmt.num(x)
        return text if len(text) <= Y_LABEL_W else fmt.num(x, 2)

    labels[0] = show(y_hi)
    labels[-1] = show(y_lo) if rows > 1 else labels[0]
    if rows >= 5:
        labels[rows // 2] = show((y_hi + y_lo) / 2)
    return labels


def _x_axis(spec: ChartSpec, plot_w: int) -> str:
    left = spec.x_format(spec.x_lo)
    right = spec.x_format(spec.x_hi)
    mid = spec.x_format((spec.x_lo + spec.x_hi) / 2)
    axis = ["─"] * plot_w
    text = left + " " * max(1, plot_w - len(left) - len(right)) + right
    if plot_w >= len(left) + len(mid) + len(right) + 4:
        m0 = plot_w // 2 - len(mid) // 2
        text = text[:m0] + mid + text[m0 + len(mid) :]
    for i, ch in enumerate(text[:plot_w]):
        if ch != " ":
            axis[i] = ch
    return "".join(axis)
