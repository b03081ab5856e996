"""Downsampling keeps min and max per column (spikes never vanish); charts draw them."""

from __future__ import annotations

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
