"""A launched run whose directory was deleted under it: `nsa status NAME` and `nsa halt NAME` said only `no run
directory 'NAME'`, though the launch index knew the run and its tmux session trained on (hours of GPU time written
into a deleted inode, and no command said so or how to stop it). They say that its directory is gone, whether its
session still runs, and how to end it. A real tmux session on this test's server stands for the live launch."""

from __future__ import annotations

import shutil
import subprocess
import time

from fixtures.cli import invoke, one_error

from nsa_tui import launched


def test_status_and_halt_of_a_deleted_run_say_whether_its_session_runs(tmp_path, tmux_socket, own_state_dir):
    run = tmp_path / "runs" / "d1"
    run.mkdir(parents=True)
    launched.record("d1", run, 1.0e9)
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-d1", "sleep 600"], check=True)
    pid = subprocess.run(
        ["tmux", "-L", tmux_socket, "list-panes", "-s", "-t", "=nsa-d1", "-F", "#{pane_pid}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    shutil.rmtree(run)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(1.0e9))
    for cmd in ("status", "halt"):
        res = invoke(cmd, "d1")
        assert res.exit_code == 3, (cmd, res.stdout, res.stderr)
        line = one_error(res)
        assert line.startswith("error: no run directory 'd1' (looked at "), line
        assert line.endswith(
            f": nsa launch started it in {run} ({when}), a directory deleted since, and its tmux session "
            f"nsa-d1 is still alive (launch wrapper pid {pid}): the trainer stops itself after the step it is in; "
            f"if the session stays, `tmux -L {tmux_socket} kill-session -t =nsa-d1` ends it"
        ), line
    subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", "=nsa-d1"], check=True)
    line = one_error(invoke("halt", "d1"))
    assert line.endswith(
        f": nsa launch started it in {run} ({when}), a directory deleted since; its tmux session nsa-d1 is "
        "gone: nothing of it runs"
    ), line


def test_a_name_nothing_launched_keeps_the_plain_error(tmp_path, tmux_socket, own_state_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_error(invoke("status", "never"))
    assert line.startswith("error: no run directory 'never' (looked at ") and line.endswith(")"), line
