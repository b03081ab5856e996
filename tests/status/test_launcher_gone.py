"""A launched run whose torchrun was killed while its ranks train on: `kill -USR1 <torchrun pid>` (a seed's habit)
left the rank running, reparented, and `nsa status` read `running, health OK`. Real processes stand in for
torchrun and its rank: what is judged is their command lines and which is whose parent (/proc)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.runs import make_v1_run
from typer.testing import CliRunner

from nsa_train.telemetry import schema
from nsa_tui.cli import app

# the rank: its command line names nsa_train and the run directory, as the trainer's does
RANK = "import time; time.sleep(120)"
# torchrun: `-m torch.distributed.run` in its argv (sys.argv[1:3]), the rank after it its child
TORCHRUN = "import subprocess, sys; subprocess.Popen(sys.argv[3:]).wait()"


def _launched(run_dir: Path, rank_pid: int) -> None:
    """A run `nsa launch` started here whose rank 0 is ``rank_pid``."""
    w = make_v1_run(run_dir, steps=100, state="running")
    w.liveness(0)  # a record of the live rank: its pid is the one to check
    hb = run_dir / schema.heartbeat_name(0)
    recs = [json.loads(ln) for ln in hb.read_text().splitlines()]
    for r in recs:
        r["pid"] = rank_pid
        if r["kind"] == schema.KIND_BOOT:
            r["host"] = socket.gethostname()
    hb.write_text("".join(json.dumps(r) + "\n" for r in recs))
    argv = [sys.executable, "-P", "-m", "torch.distributed.run", "--standalone", "-m", "nsa_train.train"]
    launch = {"argv": argv, "run_dir": str(run_dir), "host": socket.gethostname(), "ts": time.time() - 600}
    (run_dir / schema.LAUNCH_JSON).write_text(json.dumps({**launch, "tmux_session": "nsa-none-such"}))


def _rank_argv(run_dir: Path) -> list[str]:
    return [sys.executable, "-c", RANK, "-m", "nsa_train.train", "--run-dir", str(run_dir)]


def _wait_child(parent: int) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        kids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    raise AssertionError("the stand-in torchrun started no rank")


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
    torchrun = subprocess.Popen([sys.executable, "-c", TORCHRUN, "-m", "torch.distributed.run", *_rank_argv(run_dir)])
    procs.append(torchrun)
    rank = _wait_child(torchrun.pid)
    _launched(run_dir, rank)
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
