"""A crashed launch, then `nsa launch --resume` that the trainer refuses after its boot record: the run is judged by
the crashed attempt, and so is its exit status. The refused launch removed the crash's exit_status and wrote its own,
which the tools set aside, and `nsa status`, `nsa watch` and `nsa report` said "the tmux session is gone" instead of
"exit status 1" (a SIGKILL's 137: the out-of-memory hint). Real trainer, torchrun, tmux and sshd."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from nsa_train.telemetry import schema
from nsa_tui.health import evaluate
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.tail.remote import RemoteRunSource
from nsa_tui.watch.model import RunModel

from .helpers import TINY, exit_status, nsa, records, tmux_sessions, wait_for

pytestmark = pytest.mark.slow

CRASH = "exit status 1 without an end record"


def _launch_refused_resume(run_dir: Path) -> None:
    """`nsa launch --resume`, which the trainer refuses once booted; returns when its wrapper has ended."""
    ends = len([r for r in records(run_dir) if r.get("kind") == "end"])
    res = nsa("launch", "--name", run_dir.name, "--resume")
    assert res.returncode == 0, res.stderr
    wait_for(lambda: exit_status(run_dir) is not None, 90, "the refused launch's exit_status")
    refused = [r for r in records(run_dir) if r.get("kind") == "end"][ends:]
    assert [r.get(schema.RESUME_REFUSED) for r in refused] == [True], (run_dir / "console.log").read_text()[-2000:]
    wait_for(lambda: tmux_sessions() == [], 30, "the tmux session to close")


def _status(*args: str) -> dict:
    res = nsa("status", "--json", *args)
    assert res.stdout.startswith("{"), res.stderr  # a crashed run's verdict exits nonzero, on stdout as ever
    return json.loads(res.stdout)


def _watched(model: RunModel, run_dir: Path) -> tuple[str, int | None, str]:
    """What the dashboard reads once it has the refused launch's files: (state, exit status, the alert)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        model.pump()
        h = model.history
        if h.launch_refused and h.launcher_status is not None and h.previous_launcher_status is not None:
            v = evaluate(h, time.time())
            return v.state, v.exit_status, v.alerts[0].message if v.alerts else ""
        time.sleep(0.2)
    pytest.fail(f"the dashboard never read the refused launch of {run_dir}")


def test_a_refused_resume_keeps_the_crashed_launchs_exit_status(
    runs_dir, tmux_socket, tmp_path, sshd_factory, monkeypatch
):
    data = tmp_path / "data"
    data.mkdir()
    text = "\n\n".join(f"paragraph {i} " + "the quick brown fox " * 12 for i in range(60)) + "\n"
    (data / "a.txt").write_text(text)
    sets = ["--set", "data.source=local", "--set", f"data.path={data}", "--set", "data.val_docs=4"]
    res = nsa("launch", "--name", "r", *TINY, "--set", "train.save_every=2", *sets)
    assert res.returncode == 0, res.stderr
    run_dir = runs_dir / "r"
    wait_for(lambda: any(r.get("kind") == "checkpoint" for r in records(run_dir)), 120, "a checkpoint")
    boot = next(r for r in records(run_dir) if r.get("kind") == "boot")
    os.kill(boot["pid"], signal.SIGKILL)  # the trainer dies (the OOM killer): torchrun reports it, exits 1
    assert wait_for(lambda: exit_status(run_dir), 60, "the crash's exit_status") == 1
    wait_for(lambda: tmux_sessions() == [], 30, "the tmux session to close")
    crashed = _status(str(run_dir))
    assert (crashed["state"], crashed["exit_status"]) == ("crashed", 1)
    assert crashed["alerts"][0]["message"].startswith(CRASH)

    # the corpus edited at the same size, another document count; run.json's listing as the previous version wrote
    # it (names and sizes): the launch passes it, the trainer refuses the resume once it has read the files
    (data / "a.txt").write_text(text.replace("\n\n", " x", 1))
    run_json = json.loads((run_dir / schema.RUN_JSON).read_text())
    run_json["data_listing"] = [e[:2] for e in run_json["data_listing"]]
    (run_dir / schema.RUN_JSON).write_text(json.dumps(run_json))
    _launch_refused_resume(run_dir)
    v = _status(str(run_dir))
    assert "changed since the checkpoint" in v["refused_resume"]
    assert (v["state"], v["exit_status"]) == ("crashed", 1)  # was null: the refused launch's removed it
    assert v["alerts"][0]["message"].startswith(CRASH), v["alerts"]  # was "the tmux session is gone ..."
    assert "killed by SIGKILL" in v["alerts"][0]["message"]

    # the dashboard, here and over ssh, and `nsa status --host` reading the files over ssh
    s = sshd_factory(with_nsa=False)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    remote = _status("--host", s.host, str(run_dir))
    assert (remote["via"], remote["state"], remote["exit_status"]) == ("ssh", "crashed", 1)
    assert remote["alerts"][0]["message"].startswith(CRASH)
    for source in (LocalRunSource(run_dir, force_poll=True), RemoteRunSource(s.host, str(run_dir), interval=0.2)):
        model = RunModel("r", source, where=str(run_dir))
        try:
            state, status, said = _watched(model, run_dir)
        finally:
            source.close()
        assert (state, status) == ("crashed", 1) and said.startswith(CRASH), (source.describe(), said)

    # refused again: that launch's own status is dropped, the crash's kept
    _launch_refused_resume(run_dir)
    assert (run_dir / schema.EXIT_STATUS_PREVIOUS).read_text().strip() == "1"
    v = _status(str(run_dir))
    assert (v["state"], v["exit_status"]) == ("crashed", 1) and v["alerts"][0]["message"].startswith(CRASH)

    # a fresh start there (--force, no --resume) is a new run: no earlier status is its own
    res = nsa("launch", "--name", "r", "--force", *TINY, "--set", "train.steps=2", *sets)
    assert res.returncode == 0, res.stderr
    assert not (run_dir / schema.EXIT_STATUS_PREVIOUS).exists() and not (run_dir / schema.EXIT_STATUS).exists()
    wait_for(lambda: exit_status(run_dir) is not None, 120, "the fresh run's end")
    v = _status(str(run_dir))
    assert (v["state"], v["exit_status"], v["refused_resume"]) == ("finished", 0, None)
