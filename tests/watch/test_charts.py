"""Chart building without Textual: smoothing per x axis, titles that fit, an ended run's mean tokens/s, the
empty-chart message, the header's progress bar and the run tabs' name widths."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures.runs import make_v1_run
from rich.cells import cell_len

from nsa_tui import fmt
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.watch.chart_render import ChartSpec, render
from nsa_tui.watch.charts import RunCharts, ViewSettings
from nsa_tui.watch.layout import fit_fields, name_cap, progress_bar
from nsa_tui.watch.model import RunModel
from nsa_tui.watch.verdict import evaluate
from watch.helpers import NOW


def _read(run) -> RunModel:
    m = RunModel(run.name, LocalRunSource(run, force_poll=True))
    m.pump()
    m.source.close()
    return m


def test_smoothed_loss_follows_the_x_axis(tmp_path):
    """Seen after `x`: the moving average stayed in step units on the time and token axes (one cache for all)."""
    charts = RunCharts(_read(make_v1_run(tmp_path / "r", steps=600, state="running").path))
    view = ViewSettings()
    assert view.smoothing
    for ax in ("step", "time", "tokens", "step", "tokens"):
        view.x_axis = ax
        raw, smooth = charts.spec("loss", view).lines[:2]
        assert smooth.label.startswith("ma")
        np.testing.assert_array_equal(smooth.series.x, raw.series.x, err_msg=ax)
        want = np.convolve(raw.series.y, np.ones(view.smoothing) / view.smoothing)[: raw.series.n]
        np.testing.assert_allclose(smooth.series.y[view.smoothing :], want[view.smoothing :], err_msg=ax)


def test_title_fields_fit_whole():
    fields = ["gate H 0.42", " min 0.62", " col 0.04"]
    assert fit_fields(fields, 80) == "gate H 0.42 min 0.62 col 0.04"
    assert fit_fields(fields, 26) == "gate H 0.42 min 0.62"  # not "gate H 0.42 min 0.62 col 0"
    assert fit_fields(fields, 12) == "gate H 0.42"
    assert fit_fields(fields, 6) == "gate …"  # too narrow for even the first: cut, and marked
    assert fit_fields([], 10) == ""


def test_every_chart_title_is_whole_fields(tmp_path):
    run = make_v1_run(tmp_path / "r", steps=300, state="running", monitor={"max_gpu_mem_gb": 40}).path
    charts = RunCharts(_read(run))
    view = ViewSettings()
    for chart in ("loss", "lr", "toks", "mem", "gate", "shares"):
        fields = charts.title_fields(chart, view)
        assert "".join(fields) == charts.title(chart, view)
        assert all(f and not f.endswith(" ") for f in fields), (chart, fields)
        for w in range(1, 40):
            shown = fit_fields(fields, w)
            assert cell_len(shown) <= w
            assert shown.endswith("…") or any(shown == "".join(fields[:k]) for k in range(1, len(fields) + 1))


@pytest.mark.parametrize("state", ["finished", "halted", "running"])
def test_an_ended_runs_tokens_per_s_is_its_mean_as_in_nsa_status(tmp_path, state):
    """An ended run's tok/s title showed its last 10 steps; `nsa status` shows the attempt's mean ("425 tok/s
    mean", from summary.json)."""
    w = make_v1_run(tmp_path / state, steps=300, state=state, now=NOW)
    (w.path / "summary.json").write_text(json.dumps({"v": 1, "steps_completed": w.step, "mean_toks_per_s": 425.3}))
    m = _read(w.path)
    v = evaluate(m.history, NOW, m.run_dir)
    title = RunCharts(m).title("toks", ViewSettings(), v.mean_toks_per_s)
    if state == "running":  # not ended (that summary is an earlier attempt's): the last window, not a mean
        assert v.mean_toks_per_s is None and "mean" not in title
    else:
        assert v.mean_toks_per_s == pytest.approx(425.3) and title == "tok/s 425 mean"


def test_the_tokens_title_gives_mfu_when_the_gpu_is_known(tmp_path):
    """As `nsa status` does: the tokens/s as a share of the GPUs' peak (run.json), the mean's for an ended run."""
    gpu = {"flops_per_token": 8.5e8, "peak_flops": 312e12, "world_size": 2}
    w = make_v1_run(tmp_path / "gpu", steps=300, state="finished", now=NOW, run_info=gpu)
    (w.path / "summary.json").write_text(json.dumps({"v": 1, "steps_completed": w.step, "mean_toks_per_s": 40000.0}))
    m = _read(w.path)
    v = evaluate(m.history, NOW, m.run_dir)
    fields = RunCharts(m).title_fields("toks", ViewSettings(), v.mean_toks_per_s)
    assert (
        fields == ["tok/s 40k mean", f"  MFU {40000 * 8.5e8 / 624e12 * 100:.1f}%"] == ["tok/s 40k mean", "  MFU 5.4%"]
    )
    running = make_v1_run(tmp_path / "run", steps=300, now=NOW, run_info=gpu).path
    last = _read(running).history.column("toks_per_s")[-1]
    assert (
        RunCharts(_read(running)).title_fields("toks", ViewSettings())[1] == f"  MFU {last * 8.5e8 / 624e12 * 100:.2g}%"
    )
    cpu = make_v1_run(tmp_path / "cpu", steps=300, now=NOW).path  # no peak in its run.json
    assert len(RunCharts(_read(cpu)).title_fields("toks", ViewSettings())) == 1


@pytest.mark.parametrize("width", [20, 26, 33, 34, 60])
def test_empty_message_fits_the_plot(width):
    """At 100 columns (33 a chart) "no data: the run has ended" was wider than the plot and broke its frame."""
    text = render(ChartSpec([], 0.0, 1.0, empty="no data: the run has ended"), width, 8)
    rows = text.plain.split("\n")
    assert len(rows) == 8 and all(cell_len(r) == width for r in rows), rows
    assert all(r[7] in "│└" for r in rows)
    words = " ".join(r[8:].strip() for r in rows[:-1] if r[8:].strip())
    assert words == "no data: the run has ended"  # whole words, wrapped over rows


def test_empty_message_without_rows_is_cut_with_an_ellipsis():
    rows = render(ChartSpec([], 0.0, 1.0, empty="no data: the run has ended"), 20, 2).plain.split("\n")
    assert rows[0] == "       │no data: th…" and all(cell_len(r) == 20 for r in rows)


def test_progress_bar_has_no_gap_on_a_whole_cell():
    """50% of 6 cells drew `███ ░░`: the zero-eighths partial cell was a blank."""
    assert progress_bar(0.5, 6) == "███░░░"
    assert progress_bar(0.0, 5) == "░░░░░"
    assert progress_bar(1.0, 4) == "████"
    assert progress_bar(0.52, 10) == "█████▏░░░░"
    for f in np.linspace(0, 1, 97):
        bar = progress_bar(float(f), 7)
        assert len(bar) == 7 and " " not in bar


def test_tab_names_share_the_width():
    names = ["x" * 120, "fin_run", "halt_run"]
    cap = name_cap(names, 80)
    tabs = " ".join(f" {i + 1}:{fmt.clip(n, cap)} " for i, n in enumerate(names))
    assert len(tabs) <= 80 and " 2:fin_run " in tabs and " 3:halt_run " in tabs
    assert name_cap(["a", "bb"], 80) == 2  # all fit: nothing clipped
    assert fmt.clip("abcdef", 4) == "abc…" and fmt.clip("abc", 4) == "abc"
    # names differ at their end: a middle cut keeps it, in exactly the width (none cut below 4: the plain clip)
    assert fmt.clip_middle("tiny-cpu-20261207-160850", 13) == "tiny…7-160850"
    assert fmt.clip_middle("abc", 3) == "abc" and fmt.clip_middle("abcdef", 3) == "ab…"
    assert all(len(fmt.clip_middle("x" * 30, w)) == w for w in range(31))


def test_tab_marks_stay_whole_and_the_names_give_way():
    """A run's health mark ("critical", "pending") is kept whole in its tab: the names share what it leaves."""
    names, marks = ["x" * 40, "y" * 40, "z" * 40], ["critical", "pending", ""]
    cap = name_cap(names, 80, marks)
    shown = [f"{fmt.clip(n, cap)}{f' {m}' if m else ''}" for n, m in zip(names, marks, strict=True)]
    tabs = " ".join(f" {i + 1}:{s} " for i, s in enumerate(shown))
    assert len(tabs) <= 80 and " critical " in tabs and " pending " in tabs, tabs
    assert cap < name_cap(names, 80)  # without the marks the names had their room


def test_the_lr_title_names_the_phase_as_nsa_status_does(tmp_path):
    """At the last warmup step the title said cosine where `nsa status` said warmup; a finished run's said cosine
    where the verdict says done."""
    w = make_v1_run(tmp_path / "w", steps=10, now=NOW)
    warmup = w.config["train"]["warmup_steps"]
    at_edge = make_v1_run(tmp_path / "edge", steps=warmup, log_every=warmup, now=NOW).path
    m = _read(at_edge)
    assert m.history.latest_step == warmup
    assert RunCharts(m).title_fields("lr", ViewSettings())[1] == "  warmup"
    from nsa_tui.health import evaluate as judge

    assert judge(m.history, NOW).lr_phase == "warmup"
    done = _read(make_v1_run(tmp_path / "done", steps=300, state="finished", now=NOW).path)
    assert RunCharts(done).title_fields("lr", ViewSettings())[1] == "  done"


def test_the_step_axis_is_labelled_in_whole_steps(tmp_path):
    """Seen at step 25 of a run: the step axis read `0──12.5──25`; time and tokens keep their own units."""
    charts = RunCharts(_read(make_v1_run(tmp_path / "r", steps=25, state="running").path))
    view = ViewSettings()
    spec = charts.spec("loss", view)
    assert (spec.x_lo, spec.x_hi) == (0.0, 25.0)
    axis = render(spec, 60, 8).plain.split("\n")[-1]
    assert "12" in axis and "12.5" not in axis, axis
    view.x_axis = "tokens"
    assert "." in charts.spec("loss", view).x_format(12_500.0)  # 12.5k: tokens are not rounded to thousands
