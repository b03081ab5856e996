"""A launched run whose torchrun was killed while its ranks train on: `kill -USR1 <torchrun pid>` (a seed's habit)
left the rank running, reparented, and `nsa status` read `running, health OK`. Real processes stand in for
torchrun and its rank: what is judged is their command lines and which is whose parent (/proc)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from fixtures.torchrun import launched_here, start_torchrun, wait_child
from typer.testing import CliRunner

from nsa_tui.cli import app


def _status(run_dir: Path) -> dict:
    res = CliRunner().invoke(app, ["status", "--json", str(run_dir)])
    return json.loads(res.stdout)


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_a_rank_whose_torchrun_was_killed_is_said_to_run_without_it(tmp_path, procs):
    run_dir = tmp_path / "gate1"
    run_dir.mkdir()
    torchrun = start_torchrun(run_dir)
    procs.append(torchrun)
    rank = wait_child(torchrun.pid)
    launched_here(run_dir, rank)
    try:
        supervised = _status(run_dir)
        assert supervised["state"] == "running" and "launcher_gone" not in [a["rule"] for a in supervised["alerts"]]

        torchrun.kill()  # what SIGUSR1's default action did; the rank is handed to init (or a subreaper)
        torchrun.wait()
        v = _status(run_dir)
        said = next(a for a in v["alerts"] if a["rule"] == "launcher_gone")
        assert v["state"] == "running" and v["health"] == "warning", v
        assert said["message"].startswith(f"torchrun is gone and rank 0 (pid {rank}) train on without it")
    finally:
        os.kill(rank, signal.SIGKILL)
