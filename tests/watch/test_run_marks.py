"""With several runs open, only the active one's health panel is in view: its tab and the compare view's legend said
nothing of the others' health, so a run with a pending throughput_low (or a critical one) read the same there as a
healthy one. Each run's tab and legend entry now carries its mark: its health when alerts make it one, in the
header's colour, else a dim `pending` (the panel's word and grey), else nothing."""

from __future__ import annotations

from fixtures.runs import make_v1_run
from rich.console import Console
from rich.style import Style
from rich.text import Text

from nsa_tui.styles import HEALTH_STYLE
from nsa_tui.watch.widgets.line_chart import LineChart
from nsa_tui.watch.widgets.run_tabs import RunTabs
from watch.helpers import NOW, async_test, freeze_mtimes, make_app, wait_loaded

FLOOR = {"min_toks_per_s": 100_000}  # the fixture makes ~5,000 tok/s: under it, pending for its 300 s window


def _runs(tmp_path):
    make_v1_run(tmp_path / "fine", steps=100, state="running", now=NOW)
    make_v1_run(tmp_path / "slow", steps=100, state="running", now=NOW, monitor=FLOOR)
    make_v1_run(tmp_path / "nan", steps=100, state="running", now=NOW, alerts=["nan_loss"])
    for run in ("fine", "slow", "nan"):
        freeze_mtimes(tmp_path / run)
    return [tmp_path / r for r in ("fine", "slow", "nan")]


def _style_of(t: Text, word: str) -> Style:
    """The style ``word``'s first character is drawn in (the spans over it, combined)."""
    return t.get_style_at_offset(Console(), t.plain.index(word))


@async_test
async def test_each_runs_tab_and_legend_entry_say_its_alerts_or_pending_rules(tmp_path):
    app = make_app(*_runs(tmp_path))  # the first, healthy, run is the active one
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        tabs = app.query_one(RunTabs)
        # judged though never shown: the other runs' panels were not in view
        text = tabs.render()
        assert text.plain == " 1:fine   2:slow pending   3:nan critical ", text.plain
        assert tabs.marks == [("", ""), ("pending", "grey50"), ("critical", HEALTH_STYLE["critical"])]
        assert _style_of(text, "pending").color.name == "grey50"  # dim, the panel's pending grey
        assert _style_of(text, "critical").color.name == "red" and _style_of(text, "critical").bold

        await pilot.press("c")  # the compare view: its legend carries the same marks
        await pilot.pause()
        app._redraw(force=True)
        await pilot.pause()
        legend = app.query_one("#compare", LineChart).query_one("TextLine").text.plain
        assert "■fine ■slow pending ■nan critical" in legend, legend

        await pilot.press("tab")  # the slow run in view: its panel says the rule, its tab keeps the mark
        await pilot.pause()
        assert tabs.active == 1 and tabs.marks[1] == ("pending", "grey50")
        assert "reverse" in str(_style_of(tabs.render(), "pending"))  # the active tab's highlight covers it


@async_test
async def test_at_80_columns_the_names_give_way_and_every_mark_stays_whole(tmp_path):
    """Three runs' names of 22 characters: the legend was cropped at the screen's edge, the last run's mark with it."""
    runs = []
    for name, extra in (("1402", {}), ("1431", {"monitor": FLOOR}), ("1517", {"alerts": ["nan_loss"]})):
        path = tmp_path / f"nsa-tiny-20261207-{name}"
        make_v1_run(path, steps=100, state="running", now=NOW, **extra)
        freeze_mtimes(path)
        runs.append(path)
    app = make_app(*runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        tabs = app.query_one(RunTabs).render().plain
        assert len(tabs) <= 80 and tabs.rstrip().endswith(" critical") and " pending " in tabs, tabs
        # cut in the middle: the names differ by their time at the end (cut at the end, all read nsa-tiny-202612…)
        assert all(f"…61207-{t} " in tabs for t in ("1402", "1431", "1517")), tabs
        await pilot.press("c")
        await pilot.pause()
        app._redraw(force=True)
        await pilot.pause()
        chart = app.query_one("#compare", LineChart)
        legend = chart.query_one("TextLine").text.plain
        assert len(legend) <= chart.size.width and legend.rstrip().endswith(" critical"), legend
        assert " pending ■" in legend, legend
        assert all(f"{t} " in legend for t in ("1402", "1431", "1517")), legend
