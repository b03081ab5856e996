"""The dashboard watching a run of this machine judges launcher_gone as `nsa status` there does: torchrun killed
under a live rank read `running ok` in `nsa watch` while `nsa status` warned. Real processes stand in for torchrun
and its rank (fixtures/torchrun.py); the dashboard reads their parentage from /proc on its liveness check."""

from __future__ import annotations

import os
import signal
import time

from fixtures.torchrun import launched_here, start_torchrun, wait_child

from nsa_tui.health import build_rules, evaluate
from nsa_tui.runs import load_run
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.watch.app import WatchApp
from nsa_tui.watch.model import RunModel
from watch.helpers import async_test, screen_lines, wait_loaded


async def _until(pilot, app: WatchApp, model: RunModel, done, timeout: float = 8.0) -> None:
    """Ask for the model's next liveness check now (it comes every TMUX_EVERY_S) and wait until ``done()``."""
    model._tmux_at = -1e9
    t0 = time.monotonic()
    while not done() and time.monotonic() - t0 < timeout:
        await pilot.pause(0.05)


@async_test
async def test_the_dashboard_says_torchrun_is_gone_under_a_local_rank(tmp_path):
    run = tmp_path / "gate1"
    run.mkdir()
    torchrun = start_torchrun(run)
    rank = wait_child(torchrun.pid)
    try:
        launched_here(run, rank)
        model = RunModel(run.name, LocalRunSource(run, force_poll=True), where=str(run), check_liveness=True)
        app = WatchApp([model], clock=time.time)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_loaded(pilot, app)
            await _until(pilot, app, model, lambda: model._tmux_at > 0)
            app._redraw(force=True)
            supervised = app.verdicts[0]
            assert supervised.state == "running" and not [a.rule for a in supervised.alerts], supervised

            torchrun.kill()  # the rank is handed to init (or a subreaper): its parent is no torchrun any more
            torchrun.wait()
            rules = lambda: [a.rule for a in app.verdicts[0].alerts]  # noqa: E731
            await _until(pilot, app, model, lambda: "launcher_gone" in rules())
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
