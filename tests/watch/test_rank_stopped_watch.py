"""The dashboard watching a run of this machine names a stopped rank as `nsa status` there does (rank_stopped): a
rank stopped with SIGSTOP read `stalled critical heartbeat_stale` minutes later, and only the `d` key said why. A real
process stands in for the rank (fixtures/torchrun.py); the dashboard reads its state from /proc on its liveness
check."""

from __future__ import annotations

import os
import signal
import time

from fixtures.torchrun import end_stand_ins, launched_here, stopped_said, torchrun_with_rank

from nsa_tui.health import build_rules, evaluate
from nsa_tui.runs import load_run
from nsa_tui.watch.widgets.ranks_panel import RanksPanel
from watch.helpers import async_test, loaded_and_checked, screen_lines, until_liveness, watch_here


@async_test
async def test_the_dashboard_names_a_stopped_local_rank_in_its_health_panel(tmp_path):
    run = tmp_path / "paused"
    torchrun, rank = torchrun_with_rank(run)
    said = stopped_said(0, rank)
    try:
        launched_here(run, rank, monitor={"rules": {"rank_stopped": {"for": "1s"}}})  # the default 60 s, shortened
        model, app = watch_here(run)
        async with app.run_test(size=(120, 40)) as pilot:
            await loaded_and_checked(pilot, app, model)
            assert app.verdicts[0].alerts == [] and app.verdicts[0].state == "running", app.verdicts[0]

            os.kill(rank, signal.SIGSTOP)
            time.sleep(1.2)  # past the rule's `for`, counted from the rank's newest record
            rules = lambda: [a.rule for a in app.verdicts[0].alerts]  # noqa: E731
            await until_liveness(pilot, model, lambda: "rank_stopped" in rules())
            v = app.verdicts[0]
            assert [(a.rule, a.severity, a.message) for a in v.alerts] == [("rank_stopped", "critical", said)], v
            status = evaluate(load_run(run), time.time(), build_rules(model.history.config))
            assert (v.state, v.health) == (status.state, status.health) == ("stalled", "critical")
            assert [a.message for a in status.alerts] == [said]  # one rule, one message: `nsa status`'s
            await pilot.pause()
            assert any("rank_stopped" in line for line in screen_lines(app))  # the health panel says it
            app._redraw(force=True)
            assert "○ r0 stopped, last record " in app.query_one(RanksPanel).render().plain  # and the ranks line

            os.kill(rank, signal.SIGCONT)
            await until_liveness(pilot, model, lambda: not rules())
            assert app.verdicts[0].alerts == [] and app.verdicts[0].state == "running", app.verdicts[0]
            app._redraw(force=True)
            assert "● r0 s100 " in app.query_one(RanksPanel).render().plain
    finally:
        end_stand_ins(torchrun, rank)


def test_the_ranks_line_of_a_stopped_rank_says_what_its_step_and_age_are():
    """`○ r1 s1 stopped 1m39s` of a rank stopped for 1m12s of a run at step 40: s1 was its newest record's step (a rank
    above 0 writes a liveness record every 30 s only) and 1m39s that record's age, read as where it stopped and for
    how long. The age is said as what it is, and no step of a rank known not to be stepping."""
    panel = RanksPanel()
    panel.show([(0, 40, 75.0), (1, 1, 99.0)], stopped=frozenset({1}))
    shown = panel.render()
    assert shown.plain.rstrip() == "ranks ● r0 s40 1m15s  ○ r1 stopped, last record 1m39s ago", shown.plain
    at = shown.plain.index("stopped")
    assert {str(s.style) for s in shown.spans if s.start <= at < s.end} == {"bold yellow"}
