"""Render multi-series line charts as rich Text: braille plot, y axis, x axis.

Pure (rich + numpy, no Textual) so that tests can check exactly what is drawn.
"""

from __future__ import annotations

import itertools
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from rich.text import Text

from nsa_tui import fmt
from nsa_tui.watch.braille import column_strokes, pack, row_text
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
    vlines: tuple[float, ...] = ()  # boundaries drawn down (the ends of warmup)
    x_format: Callable[[float], str] = fmt.num
    y_fixed: tuple[float, float] | None = None  # e.g. (0, 1) for shares
    empty: str = "waiting for data"  # shown while no line has a point (another text once none can come)


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


def _strokes(
    mins: np.ndarray, maxs: np.ndarray, to_dot, dots_y: int, connect: bool, bad: np.ndarray | None = None
) -> np.ndarray:
    """Dot grid of one line: a vertical stroke from min to max in every column, joined to the
    previous column so a steep curve stays connected. With ``connect``, columns without points
    between two that have some (fewer points than columns: a short run, or the first minutes of a
    long one) get the straight segment between those columns' centres, as a line chart draws it;
    never across a column whose values were NaN/inf (``bad``): that gap stays visible."""
    ok = np.isfinite(mins) & np.isfinite(maxs)
    top = np.where(ok, to_dot(np.where(ok, maxs, 0.0)), -1)
    bot = np.where(ok, to_dot(np.where(ok, mins, 0.0)), -1)
    if connect and len(top) > 1:
        top, bot, ok = _bridge_gaps(top, bot, ok, bad)
        prev_ok = np.r_[False, ok[:-1]] & ok
        prev_top, prev_bot = np.r_[0, top[:-1]], np.r_[0, bot[:-1]]
        top = np.where(prev_ok, np.minimum(top, prev_bot), top)
        bot = np.where(prev_ok, np.maximum(bot, prev_top), bot)
    return column_strokes(top, bot, dots_y)


def _bridge_gaps(
    top: np.ndarray, bot: np.ndarray, ok: np.ndarray, bad: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """top/bot/ok with the empty columns between two drawn ones filled by linear interpolation (in dots)."""
    drawn = np.flatnonzero(ok)
    if len(drawn) < 2 or len(drawn) == drawn[-1] - drawn[0] + 1:
        return top, bot, ok
    cols = np.arange(drawn[0] + 1, drawn[-1])
    cols = cols[~ok[cols]]
    if bad is not None and bad.any():
        seen_bad = np.cumsum(bad)  # a gap is bridged only if no bad column lies inside it
        right = drawn[np.searchsorted(drawn, cols)]  # the drawn column after each gap column
        left = drawn[np.searchsorted(drawn, cols) - 1]
        cols = cols[seen_bad[right - 1] == seen_bad[left]]
    if len(cols) == 0:
        return top, bot, ok
    centre = (top[drawn] + bot[drawn]) / 2.0
    # the segment's extent over the column's width: steep segments fill the column top to bottom
    y0, y1 = np.interp(cols - 0.5, drawn, centre), np.interp(cols + 0.5, drawn, centre)
    top, bot, ok = top.copy(), bot.copy(), ok.copy()
    top[cols] = np.rint(np.minimum(y0, y1)).astype(top.dtype)
    bot[cols] = np.rint(np.maximum(y0, y1)).astype(bot.dtype)
    ok[cols] = True
    return top, bot, ok


def layout_key(spec: ChartSpec, width: int, height: int) -> tuple:
    """Everything render() draws from, with the lines' column caches brought up to date: two equal
    keys draw the same chart, so a redraw whose points all fell into unchanged columns can stop here."""
    ncols = max(1, width - Y_LABEL_W - 1) * 2
    lines = []
    for line in spec.lines:
        line.cache.update(line.series, spec.x_lo, spec.x_hi, ncols)
        c = line.cache
        lines.append((line.label, line.color, line.markers, c.mins.tobytes(), c.maxs.tobytes(), c.bad.tobytes()))
    return (
        width,
        height,
        spec.x_lo,
        spec.x_hi,
        spec.log_y,
        spec.hline,
        spec.hline_label,
        spec.vlines,
        spec.x_format,
        spec.y_fixed,
        spec.empty,
        tuple(lines),
    )


def render(spec: ChartSpec, width: int, height: int) -> Text:
    """The chart in exactly ``height`` lines of ``width`` cells (height >= 2)."""
    plot_w = max(1, width - Y_LABEL_W - 1)
    plot_h = max(1, height - 1)
    ncols, dots_y = plot_w * 2, plot_h * 4
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
    out = Text(no_wrap=True, overflow="crop")
    if yr is None:
        msg = _fit_message(spec.empty, plot_w, plot_h)
        top = plot_h // 2 - (len(msg) - 1) // 2
        for r in range(plot_h):
            out.append(" " * Y_LABEL_W + "│")
            line = msg[r - top] if 0 <= r - top < len(msg) else ""
            out.append(line.center(plot_w), style="dim")
            out.append("\n")
        out.append(" " * Y_LABEL_W + "└" + "─" * plot_w)
        return out
    y_lo, y_hi = yr

    def to_dot(v):
        return np.clip(np.rint((y_hi - v) / (y_hi - y_lo) * (dots_y - 1)), -1, dots_y).astype(np.int64)

    # Layers in drawing order; a cell takes the color of the last layer with a dot in it.
    layers: list[tuple[np.ndarray, str]] = []
    if spec.vlines and spec.x_hi > spec.x_lo:
        g = np.zeros((dots_y, ncols), dtype=bool)
        for vline in spec.vlines:
            vx = int((vline - spec.x_lo) / (spec.x_hi - spec.x_lo) * ncols)
            if 0 <= vx < ncols:
                g[::2, vx] = True
        if g.any():
            layers.append((g, "grey42"))
    if spec.hline is not None:
        hv = math.log10(spec.hline) if spec.log_y and spec.hline > 0 else spec.hline
        hy = int(to_dot(np.array([hv]))[0])
        if 0 <= hy < dots_y:
            g = np.zeros((dots_y, ncols), dtype=bool)
            g[hy, ::2] = True
            layers.append((g, "red"))
    for line, (mins, maxs) in zip(spec.lines, cols, strict=True):
        layers.append((_strokes(mins, maxs, to_dot, dots_y, not line.markers, line.cache.bad), line.color))
    bits = np.zeros((plot_h, plot_w), dtype=np.int64)
    color_idx = np.full((plot_h, plot_w), -1, dtype=np.int64)
    for i, (grid, _color) in enumerate(layers):
        b = pack(grid)
        bits |= b
        color_idx[b > 0] = i
    colors = [c for _, c in layers]
    labels = _y_labels(y_lo, y_hi, plot_h, spec.log_y)
    for r in range(plot_h):
        out.append(labels[r].rjust(Y_LABEL_W)[:Y_LABEL_W], style="grey62")
        out.append("┤" if labels[r] else "│", style="grey42")
        row = row_text(bits[r])
        if r == 0 and bad_any.any():
            # a NaN/inf value fell into these columns
            row = "".join("!" if bad else ch for ch, bad in zip(row, bad_any.tolist(), strict=True))
        start = len(out)
        out.append(row)
        _color_runs(out, start, color_idx[r], colors)
        if r == 0 and bad_any.any():
            for c in np.flatnonzero(bad_any).tolist():
                out.stylize("bold red", start + c, start + c + 1)
        out.append("\n")
    out.append(" " * Y_LABEL_W + "└", style="grey42")
    out.append(_x_axis(spec, plot_w), style="grey62")
    return out


def _fit_message(msg: str, width: int, rows: int) -> list[str]:
    """``msg`` in lines of at most ``width`` cells: wrapped at words when the plot has the rows, else one line
    cut with an ellipsis (a line wider than the plot would push its frame out of shape)."""
    lines = textwrap.wrap(msg, width) if width > 0 else []
    if len(lines) <= rows and all(len(ln) <= width for ln in lines):
        return lines
    return [fmt.clip(msg, width)]


def _color_runs(text: Text, start: int, idx: np.ndarray, colors: list[str]) -> None:
    """Style runs of equal layer index (one span per run, not per cell)."""
    if len(idx) == 0:
        return
    cuts = np.flatnonzero(np.diff(idx)) + 1
    bounds = [0, *cuts.tolist(), len(idx)]
    for a, b in itertools.pairwise(bounds):
        i = int(idx[a])
        if i >= 0:
            text.stylize(colors[i], start + a, start + b)


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
