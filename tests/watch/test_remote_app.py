"""`nsa watch --host`: the app over one ssh connection; `h` halts through the remote `nsa`."""

from __future__ import annotations

import time

import pytest
from fixtures.procs import descendants, signal_all
from fixtures.runs import make_v1_run

from nsa_tui.tail.remote import RemoteRunSource
from nsa_tui.watch.app import WatchApp
from nsa_tui.watch.model import RunModel
from nsa_tui.watch.widgets.health_panel import HealthPanel
from nsa_tui.watch.widgets.run_header import RunHeader
from watch.helpers import async_test


async def _until(pilot, pred, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        await pilot.pause(0.1)
    assert pred()


def remote_run_app(sshd, tmp_path):
    """A running run of 300 steps on the sshd's "host", and a dashboard of it over one connection read every 0.2 s."""
    run = tmp_path / "remote-run"
    w = make_v1_run(run, steps=300, state="running")
    src = RemoteRunSource(sshd.host, str(run), interval=0.2)
    return run, w, src, WatchApp([RunModel(run.name, src)], host=sshd.host, remote_runs=[str(run)])


@pytest.mark.slow
@async_test
async def test_remote_watch_live_and_halt(sshd, tmp_path):
    run, w, _, app = remote_run_app(sshd, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        header = app.query_one(RunHeader)
        await _until(pilot, lambda: header.info.get("step") == 300)
        assert header.info["source"] == f"ssh {sshd.host}"
        assert app.verdicts[0].state == "running"
        w.progress(2)
        await _until(pilot, lambda: header.info.get("step") == 320, timeout=5)
        await pilot.press("h")
        await pilot.press("y")
        await _until(pilot, lambda: (run / ".HALT").exists(), timeout=20)
        await _until(pilot, lambda: "halt requested on" in app.last_message, timeout=10)
        assert app.last_message == (
            f"halt requested on {sshd.host}: the trainer stops after the current step and saves a checkpoint"
        )
        # the .HALT file comes back over the same connection and the engine sees it
        await _until(pilot, lambda: app.runs[0].history.halt_requested, timeout=5)


@pytest.mark.slow
@async_test
async def test_remote_drop_shows_disconnected(tmp_path, monkeypatch):
    monkeypatch.setenv("NSA_SSH_COMMAND", "ssh -F /dev/null -p 1 -o BatchMode=yes")
    src = RemoteRunSource("root@127.0.0.1", str(tmp_path), interval=0.2)
    app = WatchApp([RunModel("gone", src)], host="root@127.0.0.1")
    async with app.run_test(size=(120, 40)) as pilot:
        header = app.query_one(RunHeader)
        await _until(pilot, lambda: "disconnected since" in header.info.get("source", ""), timeout=10)
        assert "disconnected since" in header.shown


@pytest.mark.slow
@async_test
async def test_a_lost_link_leaves_the_run_unknown_not_judged_on_old_data(sshd, tmp_path):
    """With the link down the old data aged and the run read `stalled`, critical (heartbeat_stale), while it trained
    on: `unknown` until the host answers again, as for a run directory that is gone."""
    import signal
    import subprocess

    _, _, _, app = remote_run_app(sshd, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        header = app.query_one(RunHeader)
        await _until(pilot, lambda: header.info.get("step") == 300)
        await _until(pilot, lambda: app.verdicts[0].state == "running", timeout=10)
        # the server and its sessions (this test's own sshd: its children by parent pid)
        children = subprocess.run(["pgrep", "-P", str(sshd.proc.pid)], capture_output=True, text=True).stdout.split()
        sshd.proc.send_signal(signal.SIGTERM)
        signal_all([int(pid) for pid in children], signal.SIGTERM)
        await _until(pilot, lambda: "disconnected since" in header.info.get("source", ""), timeout=15)
        await _until(pilot, lambda: app.verdicts[0].state == "unknown", timeout=15)
        assert header.info["state"] == "unknown"
        # the health panel said "no active alerts" in green, the header "unknown ok": no verdict, and why in full
        await _until(pilot, lambda: app.query_one(HealthPanel).verdict.unreachable != "", timeout=5)
        assert header.info["health"] == ""
        said = " ".join(app.query_one(HealthPanel).render().plain.split())
        assert said.startswith("not judged while the run cannot be read: ssh ") and "disconnected since" in said


@pytest.mark.slow
@async_test
async def test_a_connection_gone_quiet_is_dropped_and_made_again(sshd, tmp_path, monkeypatch):
    """A link that goes silent with TCP still up (a laptop asleep, a NAT timeout; here the host's ssh session
    stopped) left the header saying "ssh HOST" while the old data aged into `stalled`, CRITICAL (heartbeat_stale),
    for a run that trained on. The host sends a round every --interval: no byte for SILENT_MIN_S (here 2 s) drops the
    connection (`unknown`, and why), and a new one reads on."""
    import signal

    from nsa_tui.tail import remote as remote_mod

    monkeypatch.setattr(remote_mod, "SILENT_MIN_S", 2.0)
    _, w, src, app = remote_run_app(sshd, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        header = app.query_one(RunHeader)
        await _until(pilot, lambda: header.info.get("step") == 300)
        sessions = descendants(sshd.proc.pid)  # the connection's sshd processes and the remote shell
        assert sessions
        signal_all(sessions, signal.SIGSTOP)  # a short-lived command of the remote loop may be gone by now
        try:
            # bounds generous for a loaded machine (it failed twice at 10 s beside other work), not the 2 s it takes
            await _until(pilot, lambda: "no answer from" in header.info.get("source", ""), timeout=30)
            assert "disconnected since" in header.info["source"] and "(the connection went quiet)" in src.last_error
            await _until(pilot, lambda: app.verdicts[0].state == "unknown", timeout=30)
        finally:
            signal_all(sessions, signal.SIGCONT)
        w.progress(2)  # read over the new connection
        await _until(pilot, lambda: header.info.get("step") == 320, timeout=45)
        assert header.info["source"] == f"ssh {sshd.host}"


@pytest.mark.slow
@async_test
async def test_reread_while_the_host_is_unreachable_keeps_what_was_read(sshd, tmp_path, monkeypatch):
    """`r` with the link down wiped the screen (charts, events, the step) and the health panel said "no run files
    here yet (waiting for the trainer)" until the host answered again. It keeps what was read, says it cannot
    re-read now, and re-reads once the link is back."""
    import signal

    from nsa_tui.tail import remote as remote_mod

    monkeypatch.setattr(remote_mod, "SILENT_MIN_S", 2.0)
    _, w, _, app = remote_run_app(sshd, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        header = app.query_one(RunHeader)
        await _until(pilot, lambda: header.info.get("step") == 300)
        model = app.runs[0]
        resets = model.resets
        # a black hole: the listener and the connection's processes stopped
        stopped = [sshd.proc.pid, *descendants(sshd.proc.pid)]
        signal_all(stopped, signal.SIGSTOP)
        try:
            await _until(pilot, lambda: "disconnected since" in header.info.get("source", ""), timeout=30)
            await pilot.press("r")
            await pilot.pause(1.0)
            app._redraw(force=True)
            assert model.resets == resets and header.info["step"] == 300 and model.history.has_progress
            said = [n.message for n in app._notifications][-1]
            assert said.startswith(f"cannot re-read: {sshd.host} unreachable ("), said
            said = " ".join(app.query_one(HealthPanel).render().plain.split())
            assert said.startswith("not judged while the run cannot be read: ssh "), said
        finally:
            signal_all(stopped, signal.SIGCONT)
        w.progress(2)
        # the link back: read again from scratch, with what came meanwhile
        await _until(pilot, lambda: model.resets > resets and header.info.get("step") == 320, timeout=60)
        assert header.info["source"] == f"ssh {sshd.host}"


@pytest.mark.slow
@async_test
async def test_remote_halt_of_an_ended_run_says_what_the_local_one_says(sshd, tmp_path):
    """`h` on a run that had ended said "halt requested on HOST exit status: 0" (the last line of the host's `nsa
    halt`); the local dashboard says the run had already ended, and why."""
    run = tmp_path / "remote-run"
    make_v1_run(run, steps=70, state="finished")
    src = RemoteRunSource(sshd.host, str(run), interval=0.2)
    app = WatchApp([RunModel(run.name, src)], host=sshd.host, remote_runs=[str(run)])
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: app.verdicts[0].state == "finished")
        await pilot.press("h")
        await _until(pilot, lambda: app.last_message != "", timeout=30)
        assert app.last_message == "run had already ended (completed)"
        assert not (run / ".HALT").exists()
