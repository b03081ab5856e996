"""A run directory renamed while `nsa watch` shows it: the dashboard follows it where it went (found as `nsa status
OLD-PATH` finds it, nsa_tui.moved_runs), says so, and reads on with nothing lost. It showed `run_dir_gone` until
restarted, as it still does for a directory that is nowhere to be found, saying then whether its trainer runs."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from fixtures.runs import make_v1_run

from nsa_tui.tail import local
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.watch.app import WatchApp
from nsa_tui.watch.model import RunModel
from nsa_tui.watch.widgets.health_panel import HealthPanel
from nsa_tui.watch.widgets.run_header import RunHeader
from nsa_tui.watch.widgets.run_tabs import RunTabs
from watch.helpers import async_test, wait_loaded


def watched(run: Path, root: Path) -> WatchApp:
    """The dashboard as `nsa watch RUN` opens it: inotify, the real clock, the runs root searched for a rename."""
    model = RunModel(run.name, LocalRunSource(run, roots=(root,)), where=str(run), check_liveness=True)
    return WatchApp([model], clock=time.time)


async def until(pilot, cond, what: str, timeout: float = 12.0) -> None:
    t0 = time.monotonic()
    while not cond() and time.monotonic() - t0 < timeout:
        await pilot.pause(0.05)
    assert cond(), what


def rename_run(w, old: Path, new: Path, steps: int) -> None:
    """``old`` renamed to ``new`` under the trainer ``w``, which follows it (run_dir_moves.py) and writes on there."""
    old.rename(new)
    w.path = new
    w.progress(steps)


def toasts(app: WatchApp) -> list[str]:
    return [n.message for n in app._notifications]


@async_test
async def test_a_run_renamed_while_watched_is_followed_where_it_went(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    was, beside, under_root = root / "exp", root / "exp-lr3e-4", root / "kept" / "exp-final"
    w = make_v1_run(was, steps=200, state="running")
    app = watched(was, root / "kept")  # its second home is under the runs root, not beside it
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_loaded(pilot, app)
        header, panel, m = app.query_one(RunHeader), app.query_one(HealthPanel), app.runs[0]
        assert (header.info["state"], header.info["step"]) == ("running", 200)

        was.rename(beside)
        w.path = beside  # the trainer follows the rename (run_dir_moves.py) and writes on there
        w.progress(2)  # written before the dashboard noticed: read all the same
        await until(pilot, lambda: header.info["step"] == 220, "the renamed run was not followed")
        assert toasts(app)[-1] == f"run directory {was} is now {beside}"
        assert (m.where, m.name, app.query_one(RunTabs).names) == (str(beside), "exp-lr3e-4", ["exp-lr3e-4"])
        assert app._status_cmd() == f"nsa status {beside}"
        assert (header.info["state"], header.info["health"]) == ("running", "ok")
        assert not panel.verdict.alerts
        steps = list(m.table.cols["step"].x[: m.table.cols["step"].n])
        assert steps == list(range(10, 230, 10)), "the charts lost or repeated points"

        # renamed again, this time under the runs root: its first boot record says which run it is, not its path
        (root / "kept").mkdir()
        rename_run(w, beside, under_root, 1)
        await until(pilot, lambda: header.info["step"] == 230, "the second rename was not followed")
        assert toasts(app)[-1] == f"run directory {beside} is now {under_root}"
        assert m.resets == 0  # read on from where it was, never read again from its start
        assert len(m.table.cols["step"].x[: m.table.cols["step"].n]) == 23


@async_test
async def test_a_run_nowhere_to_be_found_says_whether_its_trainer_runs(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "runs", tmp_path / "archive"
    trainer = subprocess.Popen(["sleep", "60"])  # a live process of this machine lends the run its pid
    try:
        run, here = root / "exp", {"host": socket.gethostname()}
        time.sleep(1.0)  # it started before the run's last record (0.5 s old), as a trainer does
        make_v1_run(run, steps=200, state="running", age_s=0.5, pid=trainer.pid, run_info=here)
        beside = root / "exp-copy"  # another run beside it: not this one
        make_v1_run(beside, steps=50, state="running")
        elsewhere.mkdir()
        app = watched(run, root)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_loaded(pilot, app)
            header, panel = app.query_one(RunHeader), app.query_one(HealthPanel)
            await until(pilot, lambda: header.info["state"] == "running", "the live run was not read as running")

            run.rename(elsewhere / "exp")  # another parent: neither beside it nor under the runs root
            await until(pilot, lambda: [a.rule for a in panel.verdict.alerts] == ["run_dir_gone"], "not noticed")
            alive = f"its trainer is still running (pid {trainer.pid})"  # once its pid is checked (every 5 s)
            await until(pilot, lambda: alive in panel.verdict.alerts[0].message, panel.verdict.alerts[0].message)
            assert app.runs[0].where == str(run) and not any("is now" in t for t in toasts(app))

            trainer.kill()
            trainer.wait()
            await until(
                pilot,
                lambda: "its trainer is not running any more" in panel.verdict.alerts[0].message,
                "the trainer's end was not said",
            )
    finally:
        trainer.kill()
        trainer.wait()


def test_a_copy_or_a_new_run_at_its_first_path_is_not_taken_for_it(tmp_path: Path, monkeypatch) -> None:
    """Which run it is, its first boot record says, not the path it names: a `cp -r` copy beside a renamed run is
    the same run, told apart by the directory itself; a new run started since at the first path is another run."""
    monkeypatch.setattr(local, "MOVE_LOOK_EVERY_S", 0.0)  # every read looks: no wait between the steps here
    first, renamed, copy = tmp_path / "exp", tmp_path / "exp-renamed", tmp_path / "exp-copy"
    make_v1_run(first, steps=50, state="running")
    src = LocalRunSource(first, force_poll=True)
    try:
        assert src.read() and not src.dir_missing
        shutil.copytree(first, copy)
        first.rename(renamed)
        src.read()
        assert (src.directory, src.moves, src.dir_missing) == (renamed, [(first, renamed)], False)

        make_v1_run(first, steps=20, state="running", pid=5555)  # a new run at the first path, booted there too
        shutil.rmtree(copy)
        shutil.rmtree(renamed)
        src.read()
        assert (src.directory, src.dir_missing, len(src.moves)) == (renamed, True, 1)
    finally:
        src.close()


def test_two_copies_and_no_directory_of_its_own_are_named_not_chosen(tmp_path: Path, monkeypatch) -> None:
    """`cp -r` twice, then the directory deleted: both copies hold the run and neither is the directory that was
    watched. Neither is followed, and run_dir_gone names them (it said no directory held the run)."""
    monkeypatch.setattr(local, "MOVE_LOOK_EVERY_S", 0.0)
    run = tmp_path / "exp"
    make_v1_run(run, steps=50, state="running")
    m = RunModel(run.name, LocalRunSource(run, force_poll=True), where=str(run))
    try:
        m.pump()
        copies = [shutil.copytree(run, tmp_path / name) for name in ("exp-a", "exp-b")]
        shutil.rmtree(run)
        m.pump()
        assert (m.source.directory, m.history.dir_missing, m.moved) == (run, True, [])
        assert_copies_named(m, copies)
    finally:
        m.source.close()


def assert_copies_named(m: RunModel, copies: list[Path]) -> None:
    """The run's one alert is run_dir_gone, naming the two ``copies`` that hold the run."""
    from nsa_tui.watch.verdict import evaluate

    [gone] = evaluate(m.history, time.time(), m.run_dir).alerts
    assert gone.rule == "run_dir_gone" and f"hold the run are {copies[0]}; {copies[1]} (copies of it?)" in (
        gone.message
    ), gone.message
