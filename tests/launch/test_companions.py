"""`nsa halt`, `nsa dump`, `nsa attach` on run directories that are not (or no longer) running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.torchrun import stop, stopped_said

from nsa_tui.errors import UserError
from nsa_tui.launch.dump import dump_stacks

from .helpers import nsa


def _write(run_dir: Path, *recs: dict, rank: int = 0) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / f"heartbeat_rank{rank}.jsonl").open("a") as f:
        for r in recs:
            f.write(json.dumps({"v": 1, "ts": time.time(), "rank": rank, "pid": 1, **r}) + "\n")


def test_halt_an_ended_run_creates_nothing(runs_dir):
    d = runs_dir / "done"
    _write(d, {"kind": "progress", "step": 9}, {"kind": "end", "step": 10, "reason": "completed", "exit_status": 0})
    res = nsa("halt", "done", "--wait", "5")
    assert res.returncode == 0, res.stderr
    assert "had already ended (reason completed, step 10)" in res.stdout
    assert not (d / ".HALT").exists()
    # its checkpoint by absolute path: over --host, "runs/done/checkpoints/..." named nothing on this machine
    (d / "checkpoints").mkdir()
    (d / "checkpoints" / "step_00000010.pt").write_bytes(b"x")
    _write(d, {"kind": "checkpoint", "step": 10, "path": "runs/done/checkpoints/step_00000010.pt"})
    _write(d, {"kind": "end", "step": 10, "reason": "completed", "exit_status": 0})
    env = {**os.environ, "NSA_RUNS_DIR": runs_dir.name}  # relative, as on a host: its login directory's runs/
    res = nsa("halt", "done", "--wait", "5", cwd=runs_dir.parent, env=env)
    assert f"checkpoint: {d / 'checkpoints' / 'step_00000010.pt'}\n" in res.stdout, res.stdout


def test_halt_a_dead_run_fails(runs_dir):
    d = runs_dir / "dead"
    _write(d, {"kind": "progress", "step": 3})
    (d / "exit_status").write_text("137\n")
    res = nsa("halt", "dead")
    assert res.returncode == 1
    assert "not running: the launcher exited with status 137 (killed by signal SIGKILL)" in res.stderr
    assert not (d / ".HALT").exists()


def test_halt_times_out_with_nonzero_exit_and_keeps_halt(runs_dir):
    d = runs_dir / "slow"
    _write(d, {"kind": "progress", "step": 3})
    t0 = time.monotonic()
    res = nsa("halt", str(d), "--wait", "1")
    assert res.returncode == 1
    assert "no end record after 1s" in res.stderr
    assert res.stderr.rstrip().endswith(f"Check with `nsa status {d}`.")  # this run's: a bare status is the newest's
    assert time.monotonic() - t0 < 15
    assert (d / ".HALT").exists()


def test_halt_without_wait_only_creates_the_file(runs_dir):
    d = runs_dir / "nowait"
    _write(d, {"kind": "progress", "step": 3})
    res = nsa("halt", "nowait", "--wait", "0")
    assert res.returncode == 0, res.stderr
    assert (d / ".HALT").exists()


def test_unknown_run_is_one_line(runs_dir):
    for cmd in ("halt", "dump", "attach"):
        res = nsa(cmd, "no-such-run")
        assert res.returncode == 3
        assert res.stderr.startswith("error: no run directory 'no-such-run'")


def test_dump_never_signals_a_process_that_is_not_this_runs_trainer(runs_dir):
    # A live pid that is not the trainer (reused pid): SIGUSR1 would kill `sleep`.
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        d = runs_dir / "reused"
        _write(d, {"kind": "progress", "step": 3, "pid": sleeper.pid})
        res = nsa("dump", "reused")
        assert res.returncode == 1
        assert f"pid {sleeper.pid} is not this run's trainer" in res.stdout
        assert "no live trainer process" in res.stderr
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_dump_without_heartbeats(runs_dir):
    (runs_dir / "fresh").mkdir()
    (runs_dir / "fresh" / "run.json").write_text("{}\n")  # a run's file: a directory holding none is no run
    res = nsa("dump", "fresh")
    assert res.returncode == 1 and "no heartbeat files yet" in res.stderr


def test_attach_without_session(runs_dir, tmux_socket):
    d = runs_dir / "gone"
    d.mkdir()
    (d / "exit_status").write_text("0\n")
    res = nsa("attach", "gone")
    assert res.returncode == 1
    assert "no tmux session nsa-gone" in res.stderr and "exited with status 0" in res.stderr


def test_dump_of_a_stopped_trainer_says_it_is_stopped(runs_dir):
    """A trainer stopped with SIGSTOP (or ctrl-z in a shell) holds the signal until it runs again: the error said only
    "no stack dump appeared within 15s"."""
    d = runs_dir / "paused"
    d.mkdir()
    # a stand-in trainer: its command line names nsa_train and the run dir, as dump checks before it signals
    code = "import signal, time; signal.signal(signal.SIGUSR1, lambda *a: None); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, "nsa_train", "--run-dir", str(d)])
    try:
        _write(d, {"kind": "progress", "step": 3, "pid": proc.pid})
        time.sleep(0.5)
        stop(proc.pid)
        t0 = time.monotonic()
        with pytest.raises(UserError) as err:  # at once: it waited its whole 15 s before it said so
            dump_stacks(d, lambda line: None)
        assert time.monotonic() - t0 < 5
        assert str(err.value) == (f"no rank of run 'paused' can write its stacks: {stopped_said(0, proc.pid)}")
        # nsa halt waited its whole --wait and blamed "a slow step, evaluation or checkpoint"
        res = nsa("halt", str(d), "--wait", "1")
        assert res.returncode == 1 and (d / ".HALT").exists()
        said = res.stderr.strip().splitlines()[-1]
        assert said == (
            f"error: no end record after 1s: {stopped_said(0, proc.pid)}, and the run stops after the step it is "
            "waiting on; .HALT stays in place"
        ), res.stderr
    finally:
        proc.kill()
        proc.wait()


def _answering_rank0(d: Path) -> subprocess.Popen:
    """A stand-in rank 0 of run ``d`` that writes a stack dump file on SIGUSR1, as the trainer does."""
    answers = (
        "import signal, time, pathlib\n"
        "def dump(*a):\n"
        f"    pathlib.Path({str(d)!r}, f'stackdump_rank0_{{time.time():.0f}}.txt').write_text('stacks')\n"
        "signal.signal(signal.SIGUSR1, dump); time.sleep(60)"
    )
    return subprocess.Popen([sys.executable, "-c", answers, "nsa_train", "--run-dir", str(d)])


def test_dump_missing_a_rank_prints_what_came_and_exits_1(runs_dir):
    """Rank 0 wrote its stacks and rank 1's process was gone: the file came and the exit status was 0, so a script
    asking for every rank's stacks took one for all. A heartbeat file that an attempt with more ranks left behind
    is not a rank of this one."""
    d = runs_dir / "half"
    d.mkdir()
    rank0 = _answering_rank0(d)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        _write(d, {"kind": "boot", "world_size": 3}, rank=0)  # an earlier attempt with 3 ranks
        _write(d, {"kind": "progress", "step": 1, "pid": gone.pid}, rank=2)
        _write(d, {"kind": "boot", "world_size": 2, "pid": rank0.pid}, rank=0)
        _write(d, {"kind": "boot", "world_size": 2, "pid": gone.pid}, rank=1)
        time.sleep(0.5)
        res = nsa("dump", str(d))
        assert res.returncode == 1, res.stderr
        [dumped] = [line for line in res.stdout.splitlines() if "stackdump_rank0_" in line]
        assert Path(dumped).read_text() == "stacks"
        assert f"rank 1: skipped, pid {gone.pid} is not running" in res.stdout and "rank 2" not in res.stdout
        assert res.stderr.strip() == "error: stack dumps from rank(s) [0] of [0, 1]; the others are said above"
    finally:
        rank0.kill()
        rank0.wait()


@pytest.mark.parametrize("over_ssh", [False, True])
def test_dump_skips_a_stopped_rank_at_once_and_dumps_the_others(runs_dir, request, over_ssh):
    """A rank stopped with SIGSTOP held `nsa dump` for its whole 15 s wait; now it is said at once and skipped, the
    other ranks' stacks come, and the exit status says not every rank answered. Over --host (the loopback sshd) its
    `kill -CONT PID` runs through ssh, where the pid is."""
    host = request.getfixturevalue("sshd").host if over_ssh else None
    d = runs_dir / "half-stopped"
    d.mkdir()
    rank0 = _answering_rank0(d)
    rank1 = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "nsa_train", "--run-dir", str(d)])
    try:
        _write(d, {"kind": "boot", "world_size": 2, "pid": rank0.pid}, rank=0)
        _write(d, {"kind": "boot", "world_size": 2, "pid": rank1.pid}, rank=1)
        time.sleep(0.5)  # rank 0's handler set
        stop(rank1.pid)
        t0 = time.monotonic()
        res = nsa("dump", *(["--host", host] if host else []), str(d))
        assert time.monotonic() - t0 < 10 and res.returncode == 1, res.stderr
        stopped = f"skipped: {stopped_said(1, rank1.pid, host)}"
        assert res.stdout.splitlines()[0] == stopped, res.stdout
        [dumped] = [line for line in res.stdout.splitlines() if "stackdump_rank0_" in line]
        assert Path(dumped).read_text() == "stacks"
        on = f"on {host}: " if host else ""
        assert res.stderr.strip() == f"error: {on}stack dumps from rank(s) [0] of [0, 1]; the others are said above"
    finally:
        for p in (rank0, rank1):
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()


@pytest.mark.parametrize("form", ["--run-dir rel", "--run-dir=rel"])
def test_a_trainer_started_by_hand_with_a_relative_run_dir_is_this_runs(tmp_path, form):
    """A relative --run-dir was resolved against nsa's working directory, not the trainer's; `--run-dir=X` was read
    as no --run-dir at all (any trainer matched)."""
    from nsa_tui.launch.dump import check_process

    (tmp_path / "rel").mkdir()
    (tmp_path / "other").mkdir()
    code = "import time; time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, "nsa_train", *form.split()], cwd=tmp_path)
    try:
        time.sleep(0.3)
        assert check_process(0, proc.pid, tmp_path / "rel").problem is None
        assert check_process(0, proc.pid, tmp_path / "other").problem is not None
    finally:
        proc.kill()
        proc.wait()
