"""Whether a process is a run directory's trainer, and its launch.json that directory's (nsa_tui/launch/dump.py
is_its_trainer, runstate.launched_here), with a real process standing in for the trainer: it holds its run directory
open, as the trainer does for its life (nsa_train/runtime/run_dir_moves.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from fixtures.torchrun import launched_here as launched_run

from nsa_train.telemetry import schema
from nsa_tui.launch import runstate
from nsa_tui.launch.dump import rank_processes

# the trainer's command line (nsa_train, --run-dir), holding its run directory open, as the trainer does
HOLDS_ITS_RUN_DIR = "import os, sys, time; fd = os.open(sys.argv[-1], os.O_RDONLY); print('open', flush=True); "
HOLDS_ITS_RUN_DIR += "time.sleep(120)"


def test_a_directory_renamed_before_its_trainer_looked_is_still_its_run(tmp_path: Path) -> None:
    """`mv runs/a runs/b` while the trainer is inside a long step: until it looks again (its `moved` record), only
    its open directory says that runs/b is its run. Its ranks read `not this run's trainer` and launch.json `a copy`
    (so `crashed`, `nsa halt` refused); a `cp -r` copy of it is still no run of that trainer."""
    was, now = tmp_path / "a", tmp_path / "b"
    was.mkdir()
    argv = [sys.executable, "-c", HOLDS_ITS_RUN_DIR, "-m", "nsa_train.train", "--run-dir", str(was)]
    rank = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert rank.stdout is not None and rank.stdout.readline() == "open\n"
        launched_run(was, rank.pid)
        was.rename(now)
        assert [(p.rank, p.pid, p.problem) for p in rank_processes(now)] == [(0, rank.pid, None)]
        assert runstate.launched_here(now, runstate.read_launch_json(now) or {})

        copy = Path(shutil.copytree(now, tmp_path / "copy"))
        [p] = rank_processes(copy)
        assert p.other and p.problem and p.problem.startswith(f"pid {rank.pid} is not this run's trainer"), p
        assert not runstate.launched_here(copy, runstate.read_launch_json(copy) or {})
    finally:
        rank.kill()
        rank.wait()


def test_a_renamed_runs_launch_is_its_own_until_a_launch_at_its_old_path_takes_the_session(tmp_path: Path) -> None:
    """The trainer's `moved` record says the directory launched at runs/a is runs/b now. A run launched at runs/a
    since has the session name nsa-a too: runs/b's launch.json must not then lead a halt, an attach or a `--force`
    resume of runs/b to that run's session."""
    was, now = tmp_path / "a", tmp_path / "b"
    launch = {"run_dir": str(was), "tmux_session": "nsa-a", "ts": 100.0}
    now.mkdir()
    (now / schema.LAUNCH_JSON).write_text(json.dumps(launch))
    moved = {"v": 1, "ts": 200.0, "kind": schema.KIND_MOVED, "rank": 0, "step": 5, "pid": 1}
    moved |= {schema.MOVED_FROM: str(was), schema.MOVED_TO: str(now)}
    (now / schema.heartbeat_name(0)).write_text(json.dumps(moved) + "\n")
    assert runstate.launched_here(now, launch)
    assert not runstate.launched_here(now, {**launch, "ts": 300.0})  # a record from before this launch is not its

    was.mkdir()
    (was / schema.LAUNCH_JSON).write_text(json.dumps({**launch, "run_dir": str(was), "ts": 400.0}))
    assert not runstate.launched_here(now, launch)
