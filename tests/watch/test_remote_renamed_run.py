"""A run directory renamed on the host while `nsa watch --host` shows it: the host's tail script finds it where it
went (as the local dashboard does, tests/watch/test_renamed_run.py), the dashboard says so naming the host, and reads
on over the same stream with nothing lost or read twice. It showed `run_dir_gone` until restarted."""

from __future__ import annotations

import shutil
import time

import pytest
from fixtures.runs import make_v1_run

from nsa_tui.tail.remote import RemoteRunSource
from nsa_tui.watch.app import WatchApp
from nsa_tui.watch.model import RunModel
from nsa_tui.watch.widgets.health_panel import HealthPanel
from nsa_tui.watch.widgets.run_header import RunHeader
from watch.helpers import async_test, wait_loaded
from watch.test_renamed_run import assert_copies_named, rename_run, toasts, until

pytestmark = pytest.mark.slow


@async_test
async def test_a_run_renamed_on_the_host_is_followed_where_it_went(sshd, tmp_path) -> None:
    root = tmp_path / "runs"
    was, beside, under_root = root / "exp", root / "exp-lr3e-4", root / "kept" / "exp-final"
    w = make_v1_run(was, steps=200, state="running")
    src = RemoteRunSource(sshd.host, str(was), interval=0.2, runs_root=str(root / "kept"))
    app = WatchApp([RunModel(was.name, src, check_liveness=True)], host=sshd.host, remote_runs=[str(was)])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        header, panel, m = app.query_one(RunHeader), app.query_one(HealthPanel), app.runs[0]
        await until(pilot, lambda: header.info["step"] == 200, "the run was not read")

        shutil.copytree(was, root / "exp-copy")  # a copy beside it holds the run too: told apart, not followed
        rename_run(w, was, beside, 2)
        await until(pilot, lambda: header.info["step"] == 220, "the renamed run was not followed")
        assert toasts(app)[-1] == f"run directory {was} on {sshd.host} is now {beside}"
        assert (m.name, src.run_dir, app._status_cmd()) == (
            "exp-lr3e-4",
            str(beside),
            f"nsa status --host {sshd.host} {beside}",
        )
        await until(pilot, lambda: header.info["state"] == "running", "the followed run was not judged running")
        assert "run_dir_gone" not in [a.rule for a in panel.verdict.alerts]

        # renamed again, under the runs root, while the link is down (it is made again 0.5 s later): the new
        # connection finds it, the copy beside it told apart by the heartbeat it was reading (the resumed inodes)
        (root / "kept").mkdir()
        src._kill()
        rename_run(w, beside, under_root, 1)
        await until(pilot, lambda: header.info["step"] == 230, "the second rename was not followed")
        assert toasts(app)[-1] == f"run directory {beside} on {sshd.host} is now {under_root}"
        assert m.resets == 0  # read on from where it was, never read again from its start
        steps = list(m.table.cols["step"].x[: m.table.cols["step"].n])
        assert steps == list(range(10, 240, 10)), "the charts lost or repeated points"
        assert m.history.run_info, "the whole files (run.json) were lost with the old path"

        # moved where nothing looks (run_dir_gone; its whole files told gone), then into the runs root: found at a
        # later look, its whole files sent again, and read on without starting over
        away = tmp_path / "away"
        under_root.rename(away)
        await until(pilot, lambda: "run_dir_gone" in [a.rule for a in panel.verdict.alerts], "the loss was not seen")
        rename_run(w, away, root / "kept" / "exp-back", 1)
        await until(pilot, lambda: header.info["step"] == 240, "a run found at a later look was not followed")
        assert toasts(app)[-1] == f"run directory {under_root} on {sshd.host} is now {root / 'kept' / 'exp-back'}"
        await until(pilot, lambda: bool(m.history.run_info), "its whole files (run.json) were not sent again")
        await until(
            pilot,
            lambda: header.info["state"] == "running" and "run_dir_gone" not in [a.rule for a in panel.verdict.alerts],
            "the run found again was not judged running",
        )
        assert m.resets == 0 and list(m.table.cols["step"].x[: m.table.cols["step"].n]) == list(range(10, 250, 10))


def test_two_copies_on_the_host_and_no_directory_of_its_own_are_named_not_chosen(sshd, tmp_path) -> None:
    """`cp -r` twice on the host, then the directory deleted: neither copy is the directory that was read (their
    heartbeats are other files), so none is followed, and run_dir_gone names both, as it does here."""
    run = tmp_path / "exp"
    make_v1_run(run, steps=50, state="running")
    m = RunModel(run.name, RemoteRunSource(sshd.host, str(run), interval=0.2))
    try:
        deadline = time.monotonic() + 15
        while m.history.latest_step != 50 and time.monotonic() < deadline:
            m.source.wait(0.2)
            m.pump()
        copies = [shutil.copytree(run, tmp_path / name) for name in ("exp-a", "exp-b")]
        shutil.rmtree(run)
        while not m.history.dir_candidates and time.monotonic() < deadline + 15:
            m.source.wait(0.2)
            m.pump()
        assert (m.source.run_dir, m.history.dir_missing, m.moved) == (str(run), True, [])
        assert_copies_named(m, copies)
    finally:
        m.source.close()
