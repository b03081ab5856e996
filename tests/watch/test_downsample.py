"""Downsampling keeps min and max per column (spikes never vanish); charts draw them."""

from __future__ import annotations

import itertools

import numpy as np

from nsa_tui.watch.chart_render import ChartSpec, Line, render
from nsa_tui.watch.downsample import ColumnCache, min_max_columns, moving_average, nice_ceil
from nsa_tui.watch.series import Series


def test_single_spike_survives_a_million_points():
    n = 1_000_000
    xs = np.arange(n, dtype=float)
    ys = np.full(n, 2.0)
    ys[654_321] = 50.0
    ys[123_456] = -7.0
    mins, maxs, bad = min_max_columns(xs, ys, 0, n, 40)
    assert maxs.max() == 50.0 and mins.min() == -7.0
    assert maxs[int(654_321 / n * 40)] == 50.0
    assert mins[int(123_456 / n * 40)] == -7.0
    assert not bad.any()


def test_min_max_matches_brute_force_for_unsorted_x():
    rng = np.random.default_rng(1)
    xs = rng.uniform(0, 100, 5000)
    ys = rng.normal(size=5000)
    mins, maxs, _ = min_max_columns(xs, ys, 0, 100, 17)
    cols = np.clip(np.floor(xs * 17 / 100).astype(int), 0, 16)
    for c in range(17):
        assert mins[c] == ys[cols == c].min() and maxs[c] == ys[cols == c].max()


def test_nan_is_flagged_not_dropped_silently():
    xs = np.arange(10.0)
    ys = np.ones(10)
    ys[7] = np.nan
    _, _, bad = min_max_columns(xs, ys, 0, 10, 5)
    assert bad.tolist() == [False, False, False, True, False]


def test_incremental_cache_equals_full_recompute():
    s = Series()
    cache = ColumnCache()
    rng = np.random.default_rng(2)
    ys = rng.normal(size=3000)
    for i in range(0, 3000, 250):
        s.extend(np.arange(i, i + 250, dtype=float), ys[i : i + 250])
        cache.update(s, 0, 3000, 30)
    mins, maxs, _ = min_max_columns(s.x, s.y, 0, 3000, 30)
    assert np.array_equal(cache.mins, mins) and np.array_equal(cache.maxs, maxs)


def test_moving_average():
    ys = np.array([1.0, 3.0, np.nan, 5.0, 7.0])
    out = moving_average(ys, 2)
    assert out[0] == 1.0 and out[1] == 2.0 and np.isnan(out[2]) and out[3] == 5.0 and out[4] == 6.0


def test_nice_ceil():
    assert [nice_ceil(x) for x in (0.7, 3, 1001, 2400)] == [1.0, 5.0, 2000.0, 2500.0]


def test_render_draws_the_spike_and_the_limit():
    s = Series()
    xs = np.arange(100_000, dtype=float)
    ys = np.full(len(xs), 1.0)
    ys[50_000] = 10.0
    s.extend(xs, ys)
    text = render(ChartSpec([Line("loss", "cyan", s)], 0, 100_000, hline=12.0), 40, 10).plain
    rows = text.split("\n")
    assert len(rows) == 10
    assert "12" in rows[0]  # y axis reaches the limit line
    col = 8 + 16  # y labels (7) + axis (1) + the middle of 32 columns
    spike_rows = [r for r in rows[:-1] if r[col - 1 : col + 2].strip()]
    assert len(spike_rows) >= 5  # a vertical stroke up to the spike, not a flat line
    assert rows[-1].startswith(" " * 7 + "└0")


def _plot_columns(text: str) -> list[str]:
    """The plot area of a rendered chart (y labels, axis and x axis cut off) as columns of characters."""
    rows = [r[8:] for r in text.split("\n")[:-1]]
    return ["".join(r[c] for r in rows) for c in range(len(rows[0]))]


def _sparse(ys: list[float]) -> Series:
    s = Series()
    s.extend(np.arange(1.0, len(ys) + 1) * 10, np.array(ys))  # 10, 20, ... on a 0-100 axis: 1 point in 4 columns
    return s


def test_sparse_points_are_joined_into_a_line():
    """Seen on a 60-step run: fewer points than columns drew scattered dots, not a loss curve."""
    ys = [5.0, 4.0, 3.3, 2.9, 2.7, 2.6, 2.55, 2.5, 2.45, 2.4]
    cols = _plot_columns(render(ChartSpec([Line("loss", "cyan", _sparse(ys))], 0, 100), 48, 12).plain)
    drawn = [i for i, c in enumerate(cols) if c.strip()]
    assert drawn == list(range(drawn[0], drawn[-1] + 1)), "a column without dots between the first and last point"
    assert len(drawn) >= 30
    # val markers stay dots
    marks = _plot_columns(render(ChartSpec([Line("val", "y", _sparse(ys), markers=True)], 0, 100), 48, 12).plain)
    assert sum(1 for c in marks if c.strip()) == len(ys)


def test_a_nan_gap_is_not_bridged():
    ys = [5.0, 4.0, 3.3, float("nan"), float("nan"), 2.6, 2.55, 2.5, 2.45, 2.4]
    cols = _plot_columns(render(ChartSpec([Line("loss", "cyan", _sparse(ys))], 0, 100), 48, 12).plain)
    drawn = [i for i, c in enumerate(cols) if c.strip(" !")]  # '!' marks the NaN columns on the top row
    gaps = [b - a for a, b in itertools.pairwise(drawn) if b - a > 1]
    assert len(gaps) == 1 and gaps[0] >= 5, drawn  # the NaN stretch stays empty; the rest is joined
    assert "!" in "".join(cols)


def test_render_without_data_says_so():
    text = render(ChartSpec([Line("x", "red", Series())], 0, 1), 30, 5).plain
    assert "waiting for data" in text


def test_incremental_smoothing_equals_full():
    from nsa_tui.watch.charts import SmoothCache

    rng = np.random.default_rng(3)
    ys = rng.normal(size=1000)
    ys[400] = np.nan
    xs = np.arange(1000.0)
    cache = SmoothCache()
    for n in (1, 5, 37, 38, 500, 1000):
        s = cache.get(xs[:n], ys[:n], 50, 0)
    assert np.allclose(s.y, moving_average(ys, 50), equal_nan=True)


def test_shared_binning_draws_what_per_line_binning_draws():
    """Lines drawn against one x column share its binning; the columns come out the same, with
    NaN x points (time axis before the first timestamp), NaN and inf values, and after growth."""
    from nsa_tui.watch.downsample import SHARE_MIN_POINTS, ColumnCache, min_max_columns
    from nsa_tui.watch.model import XYView

    rng = np.random.default_rng(7)
    n = SHARE_MIN_POINTS * 3
    x = Series()
    xs = np.arange(n, dtype=float)
    xs[:10] = np.nan
    x.extend(xs, xs)
    lines = []
    for k in range(3):
        y = Series()
        ys = rng.normal(size=n)
        if k == 1:
            ys[[100, 5000]] = np.nan
            ys[7000] = np.inf
        y.extend(xs, ys)
        lines.append((y, ys))
    caches = []
    for y, ys in lines:  # one x column: the second and third line reuse the first one's binning
        cache = ColumnCache()
        cache.update(XYView(x, y), 0.0, float(n), 57)
        mins, maxs, bad = min_max_columns(xs, ys, 0.0, float(n), 57)
        np.testing.assert_array_equal(cache.mins, mins)
        np.testing.assert_array_equal(cache.maxs, maxs)
        np.testing.assert_array_equal(cache.bad, bad)
        caches.append(cache)
    new_x = np.arange(n, n + 50.0)
    x.extend(new_x, new_x)
    for (y, ys), cache in zip(lines, caches, strict=True):
        more = rng.normal(size=50)
        y.extend(new_x, more)
        cache.update(XYView(x, y), 0.0, float(n), 57)  # growth folds in only the new points
        mins, maxs, _ = min_max_columns(np.r_[xs, new_x], np.r_[ys, more], 0.0, float(n), 57)
        np.testing.assert_array_equal(cache.mins, mins)
        np.testing.assert_array_equal(cache.maxs, maxs)


def test_layout_key_changes_only_when_the_drawing_would():
    """A redraw whose new points land inside the min/max already drawn in their column is skipped; a point
    that moves a column's max, a new width or a log axis is not."""
    from nsa_tui.watch.chart_render import layout_key

    s = Series()
    s.extend(np.arange(1000.0), np.sin(np.arange(1000.0)))
    spec = lambda **kw: ChartSpec([Line("loss", "cyan", s)], 0, 2000, **kw)  # noqa: E731
    k0 = layout_key(spec(), 40, 10)
    assert layout_key(spec(), 40, 10) == k0
    s.extend([999.5], [0.0])  # inside the range its column already spans (sin over ~31 points)
    assert layout_key(spec(), 40, 10) == k0
    s.extend([1000.5], [5.0])  # a new max: the y axis and a stroke move
    k1 = layout_key(spec(), 40, 10)
    assert k1 != k0
    assert layout_key(spec(), 60, 10) != k1 and layout_key(spec(log_y=True), 40, 10) != k1


def test_cache_is_consistent_when_the_series_grows_while_it_reads():
    """The dashboard's compare overlay reads the other runs' columns while their reader threads extend them:
    points appended between the cache's read of x and of y must neither misalign the two nor be skipped."""
    from nsa_tui.watch.model import ChartTable, XYView

    table = ChartTable()
    steps = np.arange(1.0, 101.0)
    table.cols["step"].extend(steps, steps)
    table.cols["loss"].extend(steps, 10.0 - steps / 20)
    view = table.view("loss", "step")

    class GrowsWhileRead:  # the view, with a reader thread's append landing right after x is read
        generation = property(lambda self: view.generation)
        n = property(lambda self: view.n)
        x_column = property(lambda self: view.x_column)

        @property
        def x(self):
            xs = view.x
            more = np.arange(101.0, 111.0)
            table.cols["step"].extend(more, more)
            table.cols["loss"].extend(more, 10.0 - more / 20)
            return xs

        y = property(lambda self: view.y)

    cache = ColumnCache()
    cache.update(GrowsWhileRead(), 0.0, 200.0, 20)
    cache.update(view, 0.0, 200.0, 20)  # the next redraw folds in what came meanwhile
    want = ColumnCache()
    want.update(XYView(table.cols["step"], table.cols["loss"]), 0.0, 200.0, 20)
    np.testing.assert_array_equal(cache.mins, want.mins)
    np.testing.assert_array_equal(cache.maxs, want.maxs)
