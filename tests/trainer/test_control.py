"""Stopping and inspecting a live run: .HALT (2 gloo ranks via torchrun), signals, SIGUSR1 dumps, stalls."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from trainer_helpers import REPO, clean_env, kill_with_ranks, records, run_train, train_cmd, training, wait_for

from nsa_train.runtime import checkpoint as ck
from nsa_train.telemetry import schema

pytestmark = pytest.mark.slow


def progress_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in records(run_dir) if r["kind"] == "progress"]


def test_halt_file_stops_both_torchrun_ranks_together(run_dir: Path) -> None:
    cmd = train_cmd(run_dir, "train.steps=100000", "train.warmup_steps=10", "train.log_every=5", torchrun=2)
    proc = subprocess.Popen(cmd, cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: progress_steps(run_dir), 120, "the first progress record")
        (run_dir / schema.HALT_FILE).touch()
        t_halt = time.monotonic()
        out, _ = proc.communicate(timeout=60)
        stop_s = time.monotonic() - t_halt
    finally:
        kill_with_ranks(proc)
    assert proc.returncode == 0, out
    assert stop_s < 20, f"took {stop_s:.1f}s to stop"
    ends = [records(run_dir, r)[-1] for r in (0, 1)]
    assert all(e["kind"] == "end" and e["reason"] == "halt" and e["exit_status"] == 0 for e in ends), ends
    assert ends[0]["step"] == ends[1]["step"] < 100000  # the same step on both ranks
    latest = ck.read_pointer(run_dir / "checkpoints", schema.LATEST_POINTER)
    state = ck.load_checkpoint(latest)
    assert state["step"] == ends[0]["step"] and len(state["data"]) == 2  # both ranks' data positions
    assert not (run_dir / schema.HALT_FILE).exists()


def test_a_rank_whose_peer_was_killed_says_so_in_one_line(run_dir: Path) -> None:
    """rank 0 SIGKILLed (the OOM killer): rank 1's collective fails on the closed connection. It printed a
    40-line traceback ending in gloo's "[.../pair.cc:553] Connection closed by peer ... GLHF!", which `nsa status`
    then quoted as the console's last lines; its error record said the same."""
    cmd = train_cmd(run_dir, "train.steps=100000", "train.warmup_steps=10", "train.log_every=5", torchrun=2)
    proc = subprocess.Popen(cmd, cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: progress_steps(run_dir), 120, "the first progress record")
        boot = next(r for r in records(run_dir, 0) if r["kind"] == "boot")
        os.kill(boot["pid"], signal.SIGKILL)
        out, _ = proc.communicate(timeout=90)
    finally:
        kill_with_ranks(proc)
    assert proc.returncode != 0
    error = next(r for r in records(run_dir, 1) if r["kind"] == "error")
    assert error["message"].startswith("lost the connection to another rank (Connection "), error
    assert "pair.cc" not in error["message"] and "GLHF" not in error["message"]
    mine = [line for line in out.splitlines() if "error (rank 1)" in line]
    assert mine and mine[0].startswith("error (rank 1): lost the connection to another rank"), out[-3000:]
    before = out[: out.index(mine[0])]
    assert "Traceback" not in before, before[-3000:]  # torchrun's own report comes after, as for any failed rank
    assert records(run_dir, 1)[-1]["kind"] == "end" and records(run_dir, 1)[-1]["exit_status"] == 1


def test_stale_halt_at_start_is_reported_and_removed(run_dir: Path) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / schema.HALT_FILE).touch()
    proc = run_train(run_dir, "train.steps=3")
    assert proc.returncode == 0, proc.stderr
    recs = records(run_dir)
    assert recs[-1]["reason"] == "completed" and recs[-1]["step"] == 3
    train_phase = next(r for r in recs if r["kind"] == "phase" and r["phase"] == "train")
    assert any(".HALT" in w for w in train_phase["warnings"]) and train_phase["stale_halt_removed"] is True
    assert ".HALT" in proc.stderr
    assert not (run_dir / schema.HALT_FILE).exists()


def test_sigusr1_during_the_start_dumps_and_never_kills(run_dir: Path) -> None:
    """`nsa dump` on a start that seemed to hang (data, model, compile: where a dump is wanted most) killed the
    trainer: the dump handler came only with the training loop, and SIGUSR1's default action ends a process."""
    with training(run_dir, "train.steps=3") as proc:
        wait_for(lambda: (run_dir / schema.heartbeat_name(0)).exists(), 60, "the heartbeat file")
        while proc.poll() is None and not any(
            r["kind"] == "phase" and r.get("phase") == "train" for r in records(run_dir)
        ):
            os.kill(proc.pid, signal.SIGUSR1)  # from the boot on, through every start phase
            time.sleep(0.05)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert records(run_dir)[-1]["reason"] == "completed"
    dumps = list(run_dir.glob(schema.STACKDUMP_GLOB))
    assert dumps and all("Thread 0x" in d.read_text() for d in dumps)


def test_sigusr1_dumps_stacks_and_sigterm_stops_gracefully(run_dir: Path) -> None:
    # step 3 sleeps inside time.sleep (C code): the dump must come anyway
    with training(run_dir, "train.steps=50", NSA_TEST_SLOW_STEP="3:8") as proc:
        wait_for(lambda: 2 in progress_steps(run_dir), 120, "step 2")
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGUSR1)
        dumps = wait_for(lambda: list(run_dir.glob(schema.STACKDUMP_GLOB)), 10, "a stack dump file")
        text = wait_for(lambda: dumps[0].read_text() if "File" in dumps[0].read_text() else "", 5, "dump content")
        assert "_loop" in text and "train.py" in text  # the main thread, asleep inside its step
        assert text.count("Thread 0x") >= 2  # all threads, not only the current one
        os.kill(proc.pid, signal.SIGUSR1)  # a second dump, a second file
        wait_for(lambda: len(list(run_dir.glob(schema.STACKDUMP_GLOB))) >= 2, 10, "a second dump file")
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, out
    end = records(run_dir)[-1]
    assert end["kind"] == "end" and end["reason"] == "signal" and 3 <= end["step"] < 50
    latest = ck.read_pointer(run_dir / "checkpoints", schema.LATEST_POINTER)
    assert latest.name == ck.checkpoint_file_name(end["step"])
    assert not list(run_dir.glob(".stackdump*"))  # the spare file is cleaned up


def test_a_halt_asked_after_a_signal_stopped_the_step_is_in_the_end_record(run_dir: Path) -> None:
    """`nsa halt` waiting (.HALT created) when the tmux session was killed: the SIGHUP ended the run first (reason
    signal), and `nsa status` said `no halt was requested`. A .HALT there when the signal's stop saves is recorded.
    The .HALT comes once rank 0 said it stops on the signal, before its checkpoint is written (a larger model: a
    checkpoint that takes a while), after the step's check for it."""
    big = ("model.dim=256", "model.n_layers=4", "model.n_heads=4", "train.steps=50")
    with training(run_dir, *big, NSA_TEST_SLOW_STEP="3:8") as proc:
        assert proc.stdout is not None
        wait_for(lambda: 2 in progress_steps(run_dir), 120, "step 2")
        os.kill(proc.pid, signal.SIGTERM)  # inside step 3's sleep: the stop comes after it
        for line in proc.stdout:
            if line.startswith("[stop] signal SIGTERM: stopping after step"):
                (run_dir / schema.HALT_FILE).touch()
                break
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, out
    end = records(run_dir)[-1]
    assert (end["kind"], end["reason"], end.get(schema.END_HALT_REQUESTED)) == ("end", "signal", True), end
    assert not (run_dir / schema.HALT_FILE).exists()  # taken as the run's stop, as a halt's is: nothing left behind


def test_a_signal_alone_says_no_halt_was_requested(run_dir: Path) -> None:
    with training(run_dir, "train.steps=50", NSA_TEST_SLOW_STEP="3:8") as proc:
        wait_for(lambda: 2 in progress_steps(run_dir), 120, "step 2")
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, out
    end = records(run_dir)[-1]
    assert end["reason"] == "signal" and schema.END_HALT_REQUESTED not in end, end


def test_watchdog_reports_a_stalled_step(run_dir: Path) -> None:
    proc = run_train(run_dir, "train.steps=4", "monitor.stall_s=1", NSA_TEST_SLOW_STEP="3:3")
    assert proc.returncode == 0, proc.stderr
    recs = records(run_dir)
    stalls = [r for r in recs if r["kind"] == "stall"]
    assert len(stalls) == 1, stalls
    stall = stalls[0]
    assert stall["step"] == 2 and stall["seconds_since_progress"] >= 1
    assert "loss" not in stall  # a stall must not look like progress
    dump = Path(stall["dump"])
    text = dump.read_text()
    assert text.startswith("# stall: step 2")
    assert "_loop" in text and text.count("Thread 0x") >= 2  # where the main thread is stuck, and the others
    assert recs[-1]["reason"] == "completed"
