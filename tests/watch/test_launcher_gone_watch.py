"""The dashboard watching a run of this machine judges launcher_gone as `nsa status` there does: torchrun killed
under a live rank read `running ok` in `nsa watch` while `nsa status` warned. Real processes stand in for torchrun
and its rank (fixtures/torchrun.py); the dashboard reads their parentage from /proc on its liveness check."""

from __future__ import annotations

import os
import signal
import time

from fixtures.torchrun import launched_here, torchrun_with_rank

from nsa_tui.health import build_rules, evaluate
from nsa_tui.runs import load_run
from watch.helpers import async_test, loaded_and_checked, screen_lines, until_liveness, watch_here


@async_test
async def test_the_dashboard_says_torchrun_is_gone_under_a_local_rank(tmp_path):
    run = tmp_path / "gate1"
    torchrun, rank = torchrun_with_rank(run)
    try:
        launched_here(run, rank)
        model, app = watch_here(run)
        async with app.run_test(size=(120, 40)) as pilot:
            await loaded_and_checked(pilot, app, model)
            supervised = app.verdicts[0]
            assert supervised.state == "running" and not [a.rule for a in supervised.alerts], supervised

            torchrun.kill()  # the rank is handed to init (or a subreaper): its parent is no torchrun any more
            torchrun.wait()
            rules = lambda: [a.rule for a in app.verdicts[0].alerts]  # noqa: E731
            await until_liveness(pilot, model, lambda: "launcher_gone" in rules())
            assert rules() == ["launcher_gone"], app.verdicts[0]
            v = app.verdicts[0]
            status = evaluate(load_run(run), time.time(), build_rules(model.history.config))
            # one rule, one message: the dashboard's is the one `nsa status` gives
            assert (v.state, v.health) == (status.state, status.health) == ("running", "warning")
            assert v.alerts[0].message == next(a.message for a in status.alerts if a.rule == "launcher_gone")
            assert v.alerts[0].message.startswith(f"torchrun is gone and rank 0 (pid {rank}) train on without it")
            await pilot.pause()
            assert any("launcher_gone" in line for line in screen_lines(app))  # the health panel says it
    finally:
        if torchrun.poll() is None:
            torchrun.kill()
            torchrun.wait()
        try:
            os.kill(rank, signal.SIGKILL)
        except ProcessLookupError:
            pass
