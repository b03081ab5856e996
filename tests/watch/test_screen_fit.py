"""What an 80-column terminal shows: chart titles of whole fields, a long run name that leaves room for the
run's state, every run tab, and the `?` key in the footer."""

from __future__ import annotations

from fixtures.runs import make_v1_run
from rich.cells import cell_len

from nsa_tui.watch.charts import CHARTS
from nsa_tui.watch.widgets.line_chart import LineChart
from nsa_tui.watch.widgets.run_header import RunHeader
from nsa_tui.watch.widgets.run_tabs import RunTabs
from nsa_tui.watch.widgets.text_line import TextLine
from watch.helpers import NOW, async_test, freeze_mtimes, make_app, screen_lines, wait_loaded

LONG = "x" * 120


@async_test
async def test_chart_titles_at_80_columns_are_whole_fields(healthy_run):
    """Seen at 80 columns: "gate H 0.941 min 0.62 col 0" with the collapse fraction cut after its first digit."""
    app = make_app(healthy_run)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        titles = {c: app.query_one(f"#chart-{c}", LineChart).query_one(TextLine).text.plain for c in CHARTS}
        for c, title in titles.items():
            assert cell_len(title) <= app.query_one(f"#chart-{c}", LineChart).size.width, (c, title)
        for c, title in titles.items():
            fields = app.charts[0].title_fields(c, app.view)
            head = title.split("  ■")[0]  # the legend, when there is room for it, follows the values
            assert any(head == "".join(fields[:k]) for k in range(1, len(fields) + 1)), (c, title, fields)
        gate = app.query_one("#chart-gate", LineChart).query_one(TextLine).text.plain
        assert gate == "gate H 0.941 min 0.62"


@async_test
async def test_a_long_run_name_leaves_the_header_and_other_tabs_in_view(tmp_path):
    """A 120-character run name filled the header's first line (state, health, step, ETA were off screen) and
    the tab line (the other runs' tabs, and the active one, were off screen)."""
    runs = []
    for name in (LONG, "second", "third"):
        make_v1_run(tmp_path / name, steps=600, total_steps=6000, state="running", now=NOW)
        freeze_mtimes(tmp_path / name)
        runs.append(tmp_path / name)
    app = make_app(*runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        first = app.query_one(RunHeader).shown.split("\n")[0]
        assert cell_len(first) <= 80, first
        assert "…" in first and " running " in first and "step 600/6000" in first and "ETA " in first
        assert first.index("…") <= 80 // 3 + 2  # the name takes about a third
        for active in (0, 1, 2):
            if active:
                await pilot.press("tab")
            assert app.active == active
            tabs = app.query_one(RunTabs).render().plain
            assert cell_len(tabs) <= 80, tabs
            assert " 1:xxx" in tabs and "… " in tabs and " 2:second " in tabs and " 3:third " in tabs
            assert screen_lines(app)[0].rstrip() == tabs.rstrip()


@async_test
async def test_help_key_is_in_the_footer_at_80_columns(healthy_run):
    """At 80 and 100 columns the footer ran out of room before `? help`, the key that lists all the others."""
    for width in (80, 100):
        app = make_app(healthy_run)
        async with app.run_test(size=(width, 24)) as pilot:
            await wait_loaded(pilot, app)
            assert "? help" in screen_lines(app)[-1]


@async_test
async def test_every_footer_key_is_in_view_at_80_columns_with_several_runs(tmp_path):
    """With two runs at 80 columns the footer cut "next run" short and left out `r re-read` (and whatever follows):
    on a small SSH terminal those keys could not be found without `?`."""
    runs = []
    for name in ("first", "second"):
        make_v1_run(tmp_path / name, steps=600, total_steps=6000, state="running", now=NOW)
        freeze_mtimes(tmp_path / name)
        runs.append(tmp_path / name)
    app = make_app(*runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        footer = screen_lines(app)[-1]
        # what the footer is asked to show, one entry per action (a binding of two keys shows one of them)
        shown = {a.binding.action: a.binding for a in app.screen.active_bindings.values() if a.binding.show}
        assert len(shown) == 10, sorted(shown)
        for b in shown.values():
            key = app.get_key_display(b)
            assert f"{key} {b.description} " in footer + " ", (key, b.description, footer)
        assert "r re-read" in footer and "c compare" in footer


@async_test
async def test_an_alerts_rule_line_is_never_wrapped_at_80_columns(tmp_path):
    """At 80x24 a stalled run's panel read "CRIT  heartbeat_stale since step 15" and, on the next row, "00": the
    rule's line was wider than the panel and wrapped, and the step read as 15."""
    from nsa_tui.watch.widgets.health_panel import HealthPanel

    make_v1_run(tmp_path / "stalled", steps=1500, state="stalled", now=NOW)
    freeze_mtimes(tmp_path / "stalled")
    app = make_app(tmp_path / "stalled")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        panel = app.query_one(HealthPanel)
        assert [a.rule for a in panel.verdict.alerts] == ["heartbeat_stale"]
        lines = panel.render().plain.splitlines()
        assert all(cell_len(line) <= panel.content_size.width for line in lines), lines
        assert lines[0].rstrip().endswith("heartbeat_stale step 1500"), lines[0]
        assert any("heartbeat_stale step 1500" in row for row in screen_lines(app))
