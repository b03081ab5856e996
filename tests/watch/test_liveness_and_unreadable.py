"""What `nsa status` knows, the dashboard and `nsa report` know too: a local run started without `nsa launch`
is alive only while a rank's pid is; a file that cannot be read is said, and costs no other file's lines."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.runs import make_v1_run

from nsa_train.telemetry import schema
from nsa_tui.health import build_rules, evaluate
from nsa_tui.report.load import load_report_run
from nsa_tui.runs import load_run
from nsa_tui.tail import file_tailer
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.watch.model import TMUX_EVERY_S, RunModel


def a_dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid  # reaped: no process has it now (pids are not reused within a test's seconds)


def this_hosts_run(path: Path, pid: int) -> None:
    """A v1 run of this machine (its boot record's and run.json's host) whose ranks had ``pid``, no launch.json, no
    end record."""
    w = make_v1_run(path, steps=200, now=time.time(), run_info={"host": socket.gethostname()})
    w.pid = pid
    w.progress(1)


def model_verdict(m: RunModel, now: float):
    h = m.history
    return evaluate(h, now, build_rules(h.config))


@pytest.mark.parametrize("alive", [True, False])
def test_watch_judges_a_local_run_by_its_pid_as_status_does(tmp_path, alive):
    this_hosts_run(tmp_path / "r", os.getpid() if alive else a_dead_pid())
    m = RunModel("r", LocalRunSource(tmp_path / "r", force_poll=True), where=str(tmp_path / "r"), check_liveness=True)
    try:
        m.pump(now=0.0)  # the first read
        m.pump(now=TMUX_EVERY_S + 1)  # the liveness check, with the ranks' pids now known
        v = model_verdict(m, time.time())
    finally:
        m.source.close()
    status = evaluate(load_run(tmp_path / "r"), time.time(), build_rules(m.history.config))
    expected = ("running", []) if alive else ("crashed", ["process_exited"])
    assert (v.state, [a.rule for a in v.alerts]) == (status.state, [a.rule for a in status.alerts]) == expected


def test_a_dead_hand_started_run_is_not_said_to_have_lost_a_tmux_session(tmp_path):
    """`python -m nsa_train.train ...` killed with kill -9: status said "the tmux session is gone without an end
    record; last lines of console.log: console.log is empty or missing" for a run that had neither."""
    this_hosts_run(tmp_path / "r", a_dead_pid())
    (tmp_path / "r" / schema.CONSOLE_LOG).unlink()  # the fixture's; a run started by hand prints to its terminal
    v = evaluate(load_run(tmp_path / "r"), time.time(), None)
    (alert,) = v.alerts
    assert alert.rule == "process_exited" and "tmux" not in alert.message and "console.log" not in alert.message
    assert alert.message.startswith("the trainer's process is gone without an end record: killed without a chance")
    assert "out-of-memory killer" in alert.message


def test_report_judges_liveness_as_status_does(tmp_path):
    this_hosts_run(tmp_path / "dead", a_dead_pid())
    r = load_report_run(tmp_path / "dead")
    assert r is not None and r.verdict.state == "crashed"
    assert [a.rule for a in r.verdict.alerts] == ["process_exited"]
    # launched runs: the tmux session named in launch.json (the fixture's 'exited' run has none left)
    make_v1_run(tmp_path / "gone", state="exited", now=time.time())
    r = load_report_run(tmp_path / "gone")
    assert r is not None and r.verdict.state == "crashed"


def test_an_unreadable_file_is_said_and_loses_no_other_lines(tmp_path, monkeypatch):
    run = tmp_path / "r"
    w = make_v1_run(run, steps=100, now=time.time())
    (run / "zz_other.log").write_text("a line\n")
    real_poll = file_tailer.FileTailer.poll

    def poll(self):  # what an NFS stale handle or a file without read permission does (root ignores modes)
        if self.path.name == "zz_other.log":
            raise PermissionError(13, "Permission denied")
        return real_poll(self)

    monkeypatch.setattr(file_tailer.FileTailer, "poll", poll)
    src = LocalRunSource(run, force_poll=True)
    m = RunModel("r", src, where=str(run), check_liveness=True)
    try:
        m.pump(now=0.0)
        assert m.history.steps[-1] == 100
        assert src.trouble() == "cannot read zz_other.log (Permission denied)"
        assert "cannot read zz_other.log" in src.describe()
        w.progress(5)
        m.pump(now=1.0)
        assert m.history.steps[-1] == 150  # the other files' new lines came through
        monkeypatch.setattr(file_tailer.FileTailer, "poll", real_poll)
        w.progress(1)
        m.pump(now=2.0)
        assert src.trouble() == "" and m.history.steps[-1] == 160
        assert [line.rstrip("\n") for line in m.logs["zz_other.log"]] == ["a line"]  # read once it could be
    finally:
        src.close()


@pytest.mark.parametrize("rank", ["trainer", "dead", "reused"])
def test_a_launched_run_whose_session_is_not_found_is_judged_by_its_pids(tmp_path, tmux_socket, rank):
    """launch.json names a tmux session this shell does not find (the server under another $TMUX_TMPDIR, a launch
    from before the socket path was recorded; or the trainer outlived its session): a rank's pid that is still
    this run's trainer says the run is alive, in watch as in status. A dead pid, or one reused by another process
    (after a reboot or a kill), leaves it crashed."""
    path = tmp_path / "r"
    trainer = None
    if rank == "trainer":  # its command line names nsa_train and the run directory, as a rank's does
        code = "import time; time.sleep(60)"
        trainer = subprocess.Popen([sys.executable, "-c", code, "nsa_train.train", "--run-dir", str(path)])
    pid = {"trainer": trainer.pid if trainer else 0, "dead": a_dead_pid(), "reused": os.getpid()}[rank]
    this_hosts_run(path, pid)
    (path / schema.LAUNCH_JSON).write_text(json.dumps({"name": "r", "tmux_session": "nsa-r", "ts": time.time() - 60}))
    m = RunModel("r", LocalRunSource(path, force_poll=True), where=str(path), check_liveness=True)
    try:
        m.pump(now=0.0)
        m.pump(now=TMUX_EVERY_S + 1)
        v = model_verdict(m, time.time())
        status = evaluate(load_run(path), time.time(), build_rules(m.history.config))
    finally:
        m.source.close()
        if trainer is not None:
            trainer.kill()
            trainer.wait()
    expected = ("running", []) if rank == "trainer" else ("crashed", ["process_exited"])
    assert (v.state, [a.rule for a in v.alerts]) == (status.state, [a.rule for a in status.alerts]) == expected


def test_a_deleted_context_file_is_gone_for_watch_as_for_status(tmp_path):
    """A deleted summary.json read as an empty (unreadable) one in the dashboard, and a deleted .HALT (nsa launch
    removes it on a relaunch) kept halt_requested: the file's mtime outlived it."""
    run = tmp_path / "r"
    make_v1_run(run, steps=200, state="finished")
    (run / schema.HALT_FILE).touch()
    (run / "summary.json").write_text(json.dumps({"steps_completed": 200}))
    m = RunModel("r", LocalRunSource(run, force_poll=True), where=str(run))
    try:
        m.pump(now=0.0)
        assert m.history.halt_requested and "summary.json" in m._whole
        (run / schema.HALT_FILE).unlink()
        (run / "summary.json").unlink()
        m.pump(now=1.0)
        h = m.history
    finally:
        m.source.close()
    status = load_run(run)
    assert (h.halt_requested, h.unreadable_files) == (status.halt_requested, status.unreadable_files) == (False, {})
