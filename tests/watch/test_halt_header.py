"""The dashboard's header says a halt that waits on a live run, as `nsa status` does (tests/status/
test_halt_pending.py): a hung run with `.HALT` in place read only `stalled critical`."""

from __future__ import annotations

import os
import time

from fixtures.runs import make_v1_run

from nsa_train.telemetry import schema
from nsa_tui.watch.widgets.run_header import RunHeader
from watch.helpers import NOW, async_test, make_app, wait_loaded


@async_test
async def test_the_header_says_a_pending_halt(tmp_path):
    make_v1_run(tmp_path / "r", state="stalled", now=NOW)
    halt = tmp_path / "r" / schema.HALT_FILE
    halt.touch()
    os.utime(halt, (NOW - 240, NOW - 240))
    app = make_app(tmp_path / "r")
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_loaded(pilot, app)
        header = app.query_one(RunHeader)
        clock = time.strftime("%H:%M", time.localtime(NOW - 240))
        assert f"stalled  critical halt requested {clock}" in header.shown, header.shown


@async_test
async def test_the_header_says_a_halt_nobody_asked_for(tmp_path):
    """A run a killed tmux server's SIGHUP stopped read `halted ok`, as the user's own `nsa halt` (tests/status/
    test_stop_signal.py): the header names the signal, and a requested halt says nothing more."""
    import signal

    from fixtures.runs import end_by_signal

    w = make_v1_run(tmp_path / "hup", n_ranks=2, state="running", now=NOW)
    end_by_signal(w, signal.SIGHUP, on_rank=0)
    make_v1_run(tmp_path / "asked", state="halted", now=NOW)
    for name, said in (("hup", "halted  by SIGHUP, not requested ok"), ("asked", "halted  ok")):
        app = make_app(tmp_path / name)
        async with app.run_test(size=(160, 30)) as pilot:
            await wait_loaded(pilot, app)
            assert said in app.query_one(RunHeader).shown, app.query_one(RunHeader).shown


@async_test
async def test_the_header_says_a_halt_a_signal_overtook(tmp_path):
    """`nsa halt` waited when the tmux session was killed: the header said `by SIGHUP, not requested`."""
    w = make_v1_run(tmp_path / "y", state="running", now=NOW)
    w._hb(0, schema.KIND_END, w.step, reason=schema.END_SIGNAL, exit_status=129, **{schema.END_HALT_REQUESTED: True})
    app = make_app(tmp_path / "y")
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_loaded(pilot, app)
        shown = app.query_one(RunHeader).shown
        assert "halted  by SIGHUP, before the requested halt ok" in shown, shown
