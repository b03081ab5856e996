"""A run under the user's floor (throughput_low.min_toks_per_s) read "✓ no active alerts" in `nsa watch` for the
rule's 5-minute `for` window, and for ever on a run that ended first, while `nsa status` said `pending`. The health
panel now shows each pending rule under the alerts, dimmer: its rule, how much of its window has held, its message."""

from __future__ import annotations

import re

import pytest
from fixtures.runs import make_v1_run
from rich.cells import cell_len

from nsa_tui.health import evaluate, run_rules
from nsa_tui.runs import load_run
from nsa_tui.watch.verdict import AlertView, PendingView, VerdictView
from nsa_tui.watch.widgets.health_panel import HealthPanel
from watch.helpers import NOW, async_test, freeze_mtimes, make_app, screen_lines, wait_loaded

FLOOR = {"min_toks_per_s": 100_000}  # the fixture makes ~5,000 tok/s: under it from its first point


def _held_s(run) -> int:
    """The seconds the engine says throughput_low has held, as `nsa status --json` gives them."""
    h = load_run(run)
    [p] = evaluate(h, NOW, run_rules(h.config)[0]).pending
    assert p.rule == "throughput_low" and p.for_s == 300
    return round(p.held_s)


def _panel_rows(app) -> list[str]:
    """The panel's rows as drawn on the screen, borders stripped."""
    r = app.query_one(HealthPanel).region
    return [row[r.x : r.right].strip("│╭╮╰╯─ ") for row in screen_lines(app)[r.y : r.bottom]][1:-1]


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (160, 40)])
@async_test
async def test_a_floor_not_yet_held_for_its_window_is_shown_pending_under_no_active_alerts(tmp_path, size):
    make_v1_run(tmp_path / "slow", steps=100, state="running", now=NOW, monitor=FLOOR)  # 40 s of the 300
    freeze_mtimes(tmp_path / "slow")
    held = _held_s(tmp_path / "slow")
    app = make_app(tmp_path / "slow")
    async with app.run_test(size=size) as pilot:
        await wait_loaded(pilot, app)
        panel = app.query_one(HealthPanel)
        assert [p.rule for p in panel.verdict.pending] == ["throughput_low"] and not panel.verdict.alerts
        rows = _panel_rows(app)
        assert rows[0] == "✓ no active alerts", rows
        # whole or shorter, never wrapped or cut: at 80 columns the panel is 36 wide
        assert re.fullmatch(rf"pending throughput_low (held {held} s of 300 s|{held} s of 300 s|{held}/300 s)", rows[1])
        assert rows[2].startswith("5098 tokens/s, below the floor"), rows  # its message, under it
        assert all(cell_len(line) <= panel.content_size.width for line in panel.render().plain.splitlines())


@async_test
async def test_alerts_come_first_and_an_ended_run_says_its_pending_rule_never_fired(tmp_path):
    make_v1_run(tmp_path / "nan", steps=100, state="running", now=NOW, monitor=FLOOR, alerts=["nan_loss"])
    make_v1_run(tmp_path / "short", steps=100, state="halted", now=NOW, monitor=FLOOR)
    for run in ("nan", "short"):
        freeze_mtimes(tmp_path / run)
    app = make_app(tmp_path / "nan", tmp_path / "short")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        rows = _panel_rows(app)
        assert rows[0] == "CRIT  nan_loss since step 80", rows
        pending = [n for n, row in enumerate(rows) if row.startswith("pending ")]
        assert len(pending) == 1 and rows[pending[0]].startswith("pending throughput_low held "), rows
        assert all(not row.startswith("CRIT") for row in rows[pending[0] :]), rows  # under the alert and its message
        await pilot.press("tab")
        app._redraw(force=True)
        await pilot.pause()
        rows = _panel_rows(app)
        assert rows[0] == "✓ no active alerts", rows
        assert re.fullmatch(r"pending throughput_low \d+/300 s, run ended", rows[1]), rows


# an item's first line: an alert's rule line, a pending rule's, a start warning's (cut short at 10 columns)
RULE = re.compile(r"(?:CRIT|WARN)\s+(\S+)|pending (\S+)|(at start)")


@pytest.mark.parametrize("rows", [2, 3, 4, 6, 10])
@pytest.mark.parametrize("n_alerts", [0, 1, 3])
@pytest.mark.parametrize("n_pending", [1, 2, 4])
def test_pending_rules_fit_the_rows_after_the_alerts_and_what_does_not_fit_is_counted(rows, n_alerts, n_pending):
    """Rendered without an app at a given number of rows: each alert, then each pending rule, then each start
    warning in that order, none past the last row, and the `+N more` line counts exactly what has no row."""

    class Panel(HealthPanel):
        def _rows(self) -> int:
            return rows

    long = "that wraps over several of the panel's lines " * 3
    panel = Panel()
    panel.status_cmd = "nsa status r"
    panel.verdict = VerdictView(
        state="running",
        health="critical" if n_alerts else "ok",
        alerts=[AlertView(f"alert{n}", "critical", f"alert message {long}", 10) for n in range(n_alerts)],
        pending=[
            PendingView(f"rule{n}", "warning", f"under the floor {long}", ["held 40 s of 300 s"])
            for n in range(n_pending)
        ],
        start_warnings=[f"warning {long}"],
    )
    lines = panel.render().plain.splitlines()
    assert len(lines) <= rows, lines
    named = [next(g for g in m.groups() if g) for line in lines if (m := RULE.match(line.strip()))]
    order = [f"alert{n}" for n in range(n_alerts)] + [f"rule{n}" for n in range(n_pending)] + ["at start"]
    assert named == order[: len(named)], lines  # alerts first, then pending rules, then the start warning
    more = [line for line in lines if line.startswith("+")]
    hidden = int(re.match(r"\+(\d+)", more[0])[1]) if more else 0
    assert len(named) + hidden == len(order), lines


def test_the_more_line_names_the_pending_rules_it_counts():
    from nsa_tui.watch.layout import more_lines

    assert more_lines(1, 1, 1, "nsa status r", 80, pending=2) == [
        "+1 more alert (1 critical), 2 pending, 1 start warning: nsa status r"
    ]
    assert more_lines(0, 0, 1, "nsa status r", 80, pending=2) == ["+2 more pending, 1 start warning: nsa status r"]
