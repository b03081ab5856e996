"""`nsa launch` messages and exit statuses: a resume into a live session, a resume of no run directory, counts out
of range, and the --run-dir default in --help. Through the real CLI; nothing is started."""

from __future__ import annotations

import os
import subprocess

import pytest

from .helpers import nsa, tmux_sessions
from .test_launch_cli import _checkpointed_run, _one_error_line


def test_a_live_session_refused_on_resume_says_force_resumes(runs_dir, tmux_socket):
    """With --resume, --force kills the session and continues from the latest checkpoint: "start again" read as a
    fresh start."""
    _checkpointed_run(runs_dir, "live")
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-live", "sleep", "300"], check=True)
    res = nsa("launch", "--name", "live", "--resume", "--set", "train.steps=300")
    assert res.returncode == 1
    line = _one_error_line(res)
    assert "tmux session nsa-live already exists" in line, line
    assert line.endswith("pass --force (with --resume) to kill it and resume from the latest checkpoint"), line
    res = nsa("launch", "--name", "live")  # without --resume: as it was
    assert res.returncode == 1 and _one_error_line(res).endswith("pass --force to kill it and start again")
    assert tmux_sessions() == ["nsa-live"]


def test_resume_of_no_run_directory_says_so(runs_dir, tmux_socket, tmp_path):
    res = nsa("launch", "--name", "nosuch", "--resume")
    assert res.returncode == 1
    assert _one_error_line(res) == f"error: --resume: no run directory {runs_dir / 'nosuch'}"
    res = nsa("launch", "--run-dir", str(tmp_path / "gone"), "--resume")
    assert res.returncode == 1 and _one_error_line(res) == f"error: --resume: no run directory {tmp_path / 'gone'}"
    (tmp_path / "afile").write_text("x")
    res = nsa("launch", "--run-dir", str(tmp_path / "afile"), "--resume")
    assert res.returncode == 1
    assert _one_error_line(res) == f"error: --resume: {tmp_path / 'afile'} is a file, not a run directory"
    (runs_dir / "empty").mkdir()  # a directory without checkpoints: the message it had
    res = nsa("launch", "--name", "empty", "--resume")
    assert res.returncode == 1 and "has no checkpoint to continue (no checkpoints/latest)" in _one_error_line(res)
    assert "--force" not in _one_error_line(res)  # no run there to start afresh
    # a run stopped before its first save (a session killed at boot read `halted`): a fresh start is the way on
    (runs_dir / "empty" / "heartbeat_rank0.jsonl").write_text('{"v": 1, "ts": 1.0, "kind": "boot", "rank": 0}\n')
    res = nsa("launch", "--name", "empty", "--resume")
    assert res.returncode == 1 and _one_error_line(res).endswith("; it saved none: start it afresh without --resume")
    (runs_dir / "empty" / "exit_status").write_text("0\n")  # its launcher's files: a fresh start needs --force
    res = nsa("launch", "--name", "empty", "--resume")
    assert res.returncode == 1 and _one_error_line(res).endswith(
        "; it saved none: start it afresh with --force instead of --resume"
    )
    assert tmux_sessions() == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--nproc", "0"], "--nproc must be >= 1, got 0"),
        (["--nproc", "-3"], "--nproc must be >= 1, got -3"),
        (["--nnodes", "0"], "--nnodes must be >= 1, got 0"),
        (["--node-rank", "-1"], "--node-rank -1 is outside 0..0"),
        (["--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "h:29500"], "--node-rank 2 is outside 0..1"),
        # options that do not fit together exited 1, and only after the config (and a resume's checks)
        (["--node-rank", "1"], "--node-rank needs --nnodes > 1"),
        (["--rdzv-endpoint", "h:29500"], "--rdzv-endpoint needs --nnodes > 1 (one node rendezvous with itself)"),
        (["--nnodes", "2"], "--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the address of node 0)"),
        (["--nnodes", "2", "--rdzv-endpoint", "h:0"], "--rdzv-endpoint 'h:0': expected HOST:PORT, e.g. 10.0.0.1:29500"),
    ],
)
def test_out_of_range_counts_are_usage_mistakes(runs_dir, tmux_socket, args, says):
    """docs/launch.md: a value out of range, or options that do not fit together, are usage mistakes (exit 2),
    also before a resume's checks."""
    for extra in ([], ["--resume"]):
        res = nsa("launch", "--name", "r", "--dry-run", *args, *extra)
        assert res.returncode == 2 and _one_error_line(res) == f"error: {says}", (args, extra, res.stderr)
    assert not (runs_dir / "r").exists()


def test_launch_help_names_the_runs_root_variable():
    res = nsa("launch", "--help", env={**os.environ, "COLUMNS": "250"})
    assert res.returncode == 0
    assert "Run directory (default: $NSA_RUNS_DIR/<name>, runs/<name> when that is unset)." in res.stdout


def test_the_banner_names_the_tmux_tmpdir_its_server_is_under(runs_dir, tmux_socket, tmp_path):
    """`tmux -L NAME` alone sent a shell without this one's $TMUX_TMPDIR (a plain ssh command) to another socket
    directory, where the session is not."""
    env = {k: v for k, v in os.environ.items() if k != "TMUX_TMPDIR"}
    res = nsa("launch", "--name", "b", "--dry-run", env=env)
    assert res.returncode == 0 and f"session: nsa-b (tmux -L {tmux_socket})\n" in res.stdout, res.stdout
    res = nsa("launch", "--name", "b", "--dry-run", env={**env, "TMUX_TMPDIR": str(tmp_path)})
    assert f"session: nsa-b (tmux -L {tmux_socket}, under TMUX_TMPDIR={tmp_path})\n" in res.stdout, res.stdout
    res = nsa("launch", "--name", "b", "--dry-run", env={k: v for k, v in env.items() if k != "NSA_TMUX_SOCKET"})
    assert "session: nsa-b\n" in res.stdout, res.stdout
