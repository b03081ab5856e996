"""The memory chart: GPU allocated/reserved on a GPU run, the host's RSS on a CPU run (whose GPU columns stay
empty for good, so a GPU chart would say "waiting for data" forever). No Textual: charts are plain code."""

from __future__ import annotations

import pytest
from fixtures.runs import make_generic_run, make_v1_run

import nsa_tui.watch.model as model_mod
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.watch.chart_render import render
from nsa_tui.watch.charts import RunCharts, ViewSettings


def _read(run) -> model_mod.RunModel:
    m = model_mod.RunModel(run.name, LocalRunSource(run, force_poll=True))
    m.pump()
    m.source.close()
    return m


def _cpu_run(path):
    w = make_v1_run(path, steps=0, state="running")
    for i in range(30):  # resident memory creeping up, as a CPU run reports it
        w.progress(1, gpu_mem_alloc_gb=None, gpu_mem_reserved_gb=None, rss_gb=1.0 + 0.01 * i)
    return w.path


@pytest.mark.parametrize("bulk", [False, True], ids=["line-by-line", "columnar-first-read"])
def test_cpu_run_charts_host_rss(tmp_path, monkeypatch, bulk):
    run = _cpu_run(tmp_path / "cpu")
    monkeypatch.setattr(model_mod, "BULK_MIN_BYTES", 1 if bulk else 1 << 40)
    charts = RunCharts(_read(run))
    view = ViewSettings()
    spec = charts.spec("mem", view)
    assert [ln.label for ln in spec.lines] == ["host RSS"]
    assert spec.lines[0].series.y.tolist() == pytest.approx([1.0 + 0.01 * i for i in range(30)])
    assert charts.title("mem", view) == "RSS GiB 1.29 (CPU run)"
    drawn = render(spec, 40, 8).plain
    assert "waiting for data" not in drawn
    assert float(drawn.splitlines()[0].split("┤")[0]) >= 1.29  # the y axis reaches the newest value


def test_gpu_run_charts_gpu_memory(tmp_path):
    charts = RunCharts(_read(make_v1_run(tmp_path / "gpu", steps=100, state="running").path))
    view = ViewSettings()
    assert [ln.label for ln in charts.spec("mem", view).lines] == ["alloc", "reserved"]
    assert charts.title("mem", view).startswith("GPU GiB 18.9/21")


@pytest.mark.parametrize("kind", ["no progress yet", "a log without memory"])
def test_neither_without_memory_data(tmp_path, kind):
    """Not called a CPU run without evidence: a foreign log that records no memory may come from a GPU."""
    if kind == "no progress yet":
        run = make_v1_run(tmp_path / "new", state="starting").path
    else:
        run = make_generic_run(tmp_path / "gen", steps=200).parent  # (it returns the log file)
    charts = RunCharts(_read(run))
    view = ViewSettings()
    assert charts.model.history.has_progress == (kind != "no progress yet")
    assert charts.title("mem", view) == "GPU mem —"
    assert [ln.label for ln in charts.spec("mem", view).lines] == ["alloc", "reserved"]
    assert "waiting for data" in render(charts.spec("mem", view), 40, 8).plain


@pytest.mark.parametrize("state", ["crashed", "starting"])
def test_empty_charts_of_an_ended_run_do_not_wait(tmp_path, state):
    """Seen on a run whose data could not be opened: its charts said "waiting for data" after it had ended."""
    w = make_v1_run(tmp_path / state, steps=0, state="starting")
    if state == "crashed":
        w.error("cannot open hf dataset x")
        w.end(reason="error", exit_status=1)
    charts = RunCharts(_read(w.path))
    view = ViewSettings()
    want = "no data: the run has ended" if state == "crashed" else "waiting for data"
    for chart in ("loss", "lr", "toks", "mem", "gate", "shares"):
        drawn = render(charts.spec(chart, view), 60, 8).plain
        assert want in drawn, (chart, drawn)


def test_a_cpu_run_before_its_first_step_is_titled_as_one(tmp_path):
    """Until its first progress record a CPU run's memory panel read "GPU mem — ■alloc ■reserved"; its config phase
    record already says the device."""
    w = make_v1_run(tmp_path / "new", state="starting")
    w.phase("config", done=True, device="cpu", precision="fp32")
    charts = RunCharts(_read(w.path))
    view = ViewSettings()
    assert not charts.model.history.has_progress
    assert charts.title("mem", view) == "RSS GiB — (CPU run)"
    assert [ln.label for ln in charts.spec("mem", view).lines] == ["host RSS"]
    w2 = make_v1_run(tmp_path / "gpu", state="starting")
    w2.phase("config", done=True, device="cuda:0", precision="bf16")
    assert RunCharts(_read(w2.path)).title("mem", view) == "GPU mem —"
