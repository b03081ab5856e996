"""What an 80-column terminal shows: chart titles of whole fields, a long run name that leaves room for the
run's state, every run tab, and the `?` key in the footer."""

from __future__ import annotations

import re

import pytest
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
            assert " 1:xxx" in tabs and "x…x" in tabs and " 2:second " in tabs and " 3:third " in tabs
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
        rule = next(line for line in lines if "heartbeat_stale" in line)  # under the 1M fixture's tok/s line
        assert rule.rstrip().endswith("heartbeat_stale step 1500"), lines
        assert any("heartbeat_stale step 1500" in row for row in screen_lines(app))


# three critical alerts and four warnings: at 80x24 the panel has rows for three alerts with their messages
MIXED = ["nan_loss", "gate_collapse_severe", "disk_low_severe", "data_stall", "lr_mismatch", "fallbacks_rising"]
MIXED += ["val_rising"]
# the panel's last line: "+N more alerts (C critical): CMD", or "+N more (C CRIT): CMD", or the count on a row of its
# own above the command's
MORE = re.compile(r"│ \+(\d+)(?: more)?(?: alerts?)?(?: \((\d+) (?:critical|CRIT)\))?(?:: (.*?))?\s*│")
# five more critical ones (a threshold rule on a metric every point has): more critical alerts than rows
MORE_CRITICAL = {f"rss_over_{n}": {"metric": "rss_gb", "above": n * 0.1, "severity": "critical"} for n in range(5)}


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
@pytest.mark.parametrize("extra_rules", [{}, MORE_CRITICAL], ids=["mixed", "more-critical-than-rows"])
@async_test
async def test_alerts_that_do_not_fit_the_health_panel_are_counted_most_severe_first(
    tmp_path, monkeypatch, size, extra_rules
):
    """Seven alerts (`nsa status` listed them all) and a panel of six rows: three showed, the other four were cut off
    without a word, and a critical alert could have been among them."""
    from nsa_tui.watch.widgets.health_panel import HealthPanel

    app = _many_alerts(tmp_path, monkeypatch, extra_rules)
    async with app.run_test(size=size) as pilot:
        await wait_loaded(pilot, app)
        assert len(app.query_one(HealthPanel).verdict.alerts) == 3 + len(extra_rules) + 4
        assert app.query_one(HealthPanel).size.height == 6
        _every_critical_alert_shown_or_counted(app)


@async_test
async def test_alerts_that_do_not_fit_beside_the_charts_are_counted(tmp_path, monkeypatch):
    """On a wide screen the panel is as tall as its lines, up to its max-height: the lines past it were lost."""
    from nsa_tui.watch.widgets.health_panel import HealthPanel

    app = _many_alerts(
        tmp_path,
        monkeypatch,
        MORE_CRITICAL | {f"rss_warn_{n}": {"metric": "rss_gb", "above": n * 0.1} for n in range(5)},
    )
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_loaded(pilot, app)
        panel = app.query_one(HealthPanel)
        assert len(panel.verdict.alerts) == 17 and panel.size.height == 14
        _every_critical_alert_shown_or_counted(app)


@pytest.mark.parametrize("by_name", [True, False], ids=["name", "path"])
@async_test
async def test_the_more_line_names_this_run_or_no_command(tmp_path, monkeypatch, by_name):
    """At 80x24 a run under a launch's 24-character default name said `+3 more alerts: nsa status`: that command
    opens the newest run, which said `health OK` of this critical one. The command names this run (its name, or
    its path where `nsa status` would not find it by name), on a row of its own where the count leaves it no room
    beside it, or is not said at all."""
    from nsa_tui.watch.widgets.health_panel import HealthPanel

    name = "tiny-cpu-20261207-101010"
    app = _many_alerts(tmp_path, monkeypatch, {}, name=name)
    if not by_name:
        monkeypatch.setenv("NSA_RUNS_DIR", str(tmp_path / "elsewhere"))
    cmd = f"nsa status {name if by_name else tmp_path / name}"
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        for width in (80, 86, 96, 110, 124, 139, 80):
            await pilot.resize_terminal(width, 24)
            app._redraw(force=True)
            await pilot.pause()
            panel = app.query_one(HealthPanel)
            lines = panel.render().plain.splitlines()
            said = [line for line in lines if "nsa status" in line]
            assert all(line.endswith(cmd) for line in said), (width, lines)
            if len(cmd) <= panel.content_size.width:
                assert said, (width, lines)  # a row of its own, where it fits one
            _every_critical_alert_shown_or_counted(app, cmd if said else None)
        if by_name:  # 36 columns at 80: the count above the command
            assert lines[-2:] == ["+3 more alerts", cmd], lines


def _many_alerts(tmp_path, monkeypatch, extra_rules: dict, name: str = "many"):
    monkeypatch.setenv("NSA_RUNS_DIR", str(tmp_path))  # the run is found by its name: `nsa status many`
    make_v1_run(tmp_path / name, steps=1500, state="running", now=NOW, alerts=MIXED, monitor={"rules": extra_rules})
    freeze_mtimes(tmp_path / name)
    return make_app(tmp_path / name)


def _every_critical_alert_shown_or_counted(app, cmd: str | None = "nsa status many") -> None:
    """The panel's rule lines are the verdict's first alerts, critical first, and its last line counts the rest (and
    the critical ones among them) and names `nsa status RUN`."""
    from nsa_tui.watch.widgets.health_panel import HealthPanel

    panel = app.query_one(HealthPanel)
    alerts = [(a.severity, a.rule) for a in panel.verdict.alerts]  # the engine's, as `nsa status` lists them
    critical = {rule for sev, rule in alerts if sev == "critical"}
    r = panel.region  # its box on the screen, border included
    rows = [line[r.x : r.right] for line in screen_lines(app)[r.y : r.bottom]]
    sev = {"CRIT": "critical", "WARN": "warning"}
    shown = [(sev[m[1]], m[2]) for row in rows if (m := re.match(r"│\s+(CRIT|WARN)\s+(\S+)", row))]
    assert shown == sorted(alerts, key=lambda a: a[0] != "critical")[: len(shown)], shown  # most severe first
    more = [m for row in rows if (m := MORE.match(row))]
    assert len(more) == 1, "\n".join(rows)
    hidden_critical = len(critical - {rule for _, rule in shown})
    assert int(more[0][1]) == len(alerts) - len(shown) and int(more[0][2] or 0) == hidden_critical, more[0][0]
    last = rows.index(more[0].string)
    if more[0][3] is None and cmd is not None:  # the command on the row below the count
        last += 1
        assert rows[last].strip("│ ") == cmd, rows
    else:
        assert more[0][3] == cmd, more[0][0]
    panel_rows = [i for i, row in enumerate(rows) if row.startswith("│")]
    assert last == max(panel_rows) and len(panel_rows) == panel.size.height, rows


@async_test
async def test_alerts_that_fit_a_line_each_are_all_named_before_any_message(tmp_path, monkeypatch):
    """Five alerts and a start warning in six rows: each alert took two rows, and three of them, with the warning,
    were below the panel's edge."""
    from nsa_tui.watch.widgets.health_panel import HealthPanel

    monkeypatch.setenv("NSA_RUNS_DIR", str(tmp_path))
    five = ["nan_loss", "gate_collapse_severe", "data_stall", "lr_mismatch", "fallbacks_rising"]
    w = make_v1_run(tmp_path / "five", steps=1500, state="running", now=NOW, alerts=five)
    w.phase("train", warnings=["a 5000-step run with no periodic checkpoints"])
    freeze_mtimes(tmp_path / "five")
    app = make_app(tmp_path / "five")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(pilot, app)
        panel = app.query_one(HealthPanel)
        assert len(panel.verdict.alerts) == 5 and panel.size.height == 6
        lines = panel.render().plain.splitlines()
        assert [line.split()[1] for line in lines[:5]] == [a.rule for a in panel.verdict.alerts], lines
        assert lines[5].startswith("at start a 5000-step run") and len(lines) == 6, lines


@pytest.mark.parametrize("rows", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("n_warnings", [1, 2, 3, 5, 8])
def test_start_warnings_and_their_count_fit_the_rows_left(rows, n_warnings):
    """With no alert, warnings cut to make room for the `+N more` row still shared every row below the verdict among
    themselves: in 3 rows, `✓ no active alerts`, one warning over two rows and the count made 4 lines. Rendered
    without an app at a given number of rows (a rules problem or the tok/s note leaves the panel this few)."""
    from nsa_tui.watch.verdict import VerdictView
    from nsa_tui.watch.widgets.health_panel import HealthPanel

    class Panel(HealthPanel):
        def _rows(self) -> int:
            return rows

    panel = Panel()
    warnings = [f"warning {n} " + "that wraps over several of the panel's lines " * 3 for n in range(n_warnings)]
    panel.verdict = VerdictView(state="running", health="ok", start_warnings=warnings)
    panel.status_cmd = "nsa status r"
    lines = panel.render().plain.splitlines()
    assert len(lines) <= rows and lines[0] == "✓ no active alerts", lines
    shown = sum(line.startswith("at start") for line in lines)
    more = [line for line in lines if line.startswith("+")]
    assert shown + (int(more[0].split()[0][1:]) if more else 0) == n_warnings, lines
