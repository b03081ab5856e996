"""What a start does with a run directory that holds something already: an earlier run's results (refused without
--resume or --force), a checkpoint directory it cannot write (refused before training), a damaged or missing
latest checkpoint (one line naming the checkpoints that are left)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from trainer_helpers import REPO, clean_env, records, run_train, train_cmd, trained_once, wait_for

from nsa_train.runtime import checkpoint as ck
from nsa_train.runtime.rundir import earlier_results
from nsa_train.telemetry import schema

pytestmark = pytest.mark.slow

RUN = ("train.steps=6", "train.save_every=3", "train.keep_last=5")
# the tests that copy the module's one finished run: one worker trains it for all of them (each test trained its own:
# six runs of the same command, two of others that served as well)
SHARES_THE_FINISHED_RUN = pytest.mark.xdist_group("run-dir-guards-finished-run")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of RUN (checkpoints at steps 3 and 6), trained once: read-only, each test changes its own copy."""
    return trained_once(tmp_path_factory, "finished", "r", *RUN)


def _finished(finished_run: Path, path: Path) -> Path:
    """A copy of the finished run at ``path``, mtimes kept (the checkpoints' order is their write times')."""
    shutil.copytree(finished_run, path)
    return path


@SHARES_THE_FINISHED_RUN
def test_a_fresh_start_over_an_earlier_run_is_refused_and_writes_nothing(finished_run: Path, tmp_path: Path) -> None:
    """The trainer started again in a finished run's directory without --resume pruned that run's checkpoints,
    moved latest/best to its own and appended its rows to the old logs, without a word."""
    run = _finished(finished_run, tmp_path / "r")
    before = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    proc = run_train(run, "train.steps=3", "train.lr=1e-2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {run} holds an earlier run (2 checkpoints, training.csv, ")
    # it trained to its train.steps: a plain --resume would have nothing to do (seen advised, then refused)
    assert "train it on past step 6 (its train.steps 6) with --resume --set train.steps=N, N > 6, or " in err[0]
    assert "--force starts afresh there" in err[0]
    assert {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # not even a boot record
    # --force does start afresh there (nsa launch --force passes it)
    cmd = [*train_cmd(run, "train.steps=3"), "--force"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    ends = [r for r in records(run) if r["kind"] == "end"]
    assert ends[-1]["step"] == 3 and ends[-1]["reason"] == "completed"


def test_an_attempt_that_failed_before_training_does_not_block_the_next(tmp_path: Path) -> None:
    """A config typo fails the first start after its boot record: the same command, mended, starts there."""
    run = tmp_path / "r"
    assert run_train(run, "train.stepz=3").returncode == 2
    assert earlier_results(run) == []
    # one that failed at its data, after the config (it wrote config.yaml, an empty checkpoints/, summary.json)
    assert run_train(run, "data.source=local", f"data.path={tmp_path / 'nope.txt'}").returncode == 2
    assert (run / schema.SUMMARY_JSON).is_file() and earlier_results(run) == []
    assert run_train(run, "train.steps=2").returncode == 0


def test_a_read_only_checkpoint_dir_fails_before_training(tmp_path: Path) -> None:
    """It failed at the first save (train.save_every steps of work later) with a traceback and exit 1."""
    if os.geteuid() == 0:  # root writes through permission bits: a file where the directory should be instead
        run = tmp_path / "r"
        run.mkdir()
        (run / schema.CHECKPOINT_DIR).write_text("not a directory\n")
    else:
        run = tmp_path / "r"
        (run / schema.CHECKPOINT_DIR).mkdir(parents=True)
        (run / schema.CHECKPOINT_DIR).chmod(0o500)
    proc = run_train(run, *RUN)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"error: checkpoints cannot be written to {run / schema.CHECKPOINT_DIR}" in proc.stderr
    assert not [r for r in records(run) if r["kind"] == "progress"]  # refused before the first step


def test_a_save_that_cannot_write_is_one_line(tmp_path: Path) -> None:
    d = tmp_path / "checkpoints"
    d.mkdir()
    (d / ck.checkpoint_file_name(3)).mkdir()  # os.replace onto a directory: IsADirectoryError
    with pytest.raises(ck.CheckpointError, match=r"cannot write .*step_00000003\.pt: Is a directory"):
        ck.save_checkpoint(d, 3, {"model": {}, "step": 3})
    assert not list(d.glob(".*.tmp"))


@SHARES_THE_FINISHED_RUN
def test_a_damaged_checkpoint_is_refused_and_the_others_are_named(finished_run: Path, tmp_path: Path) -> None:
    """Bytes changed inside the latest checkpoint loaded without a word and the resume stopped at its first step
    with a NaN loss; an empty or missing latest named no other checkpoint."""
    run = _finished(finished_run, tmp_path / "r")
    ckpts = run / schema.CHECKPOINT_DIR
    latest = ckpts / ck.checkpoint_file_name(6)
    data = bytearray(latest.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = b"\xff" * 64
    latest.write_bytes(bytes(data))
    proc = run_train(run, "train.steps=9", resume=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    err = proc.stderr.strip().splitlines()[-1]
    assert f"checkpoint {latest} is damaged" in err and "does not match the checksum" in err
    hint = f"{ckpts} holds {ck.checkpoint_file_name(3)}: to continue from one, write its name into {ckpts / 'latest'}"
    assert hint in err
    # without a latest pointer: the same hint; followed, it resumes
    latest.unlink()
    (ckpts / schema.LATEST_POINTER).unlink()
    proc = run_train(run, "train.steps=9", resume=True)
    assert proc.returncode == 2 and f"(no 'latest' pointer). {ckpts} holds {ck.checkpoint_file_name(3)}" in proc.stderr
    (ckpts / schema.LATEST_POINTER).write_text(ck.checkpoint_file_name(3) + "\n")
    proc = run_train(run, "train.steps=9", resume=True)
    assert proc.returncode == 0 and "at step 3" in proc.stdout, proc.stderr


@SHARES_THE_FINISHED_RUN
def test_a_damaged_newer_checkpoint_is_not_offered_after_the_pointer_moved_off_it(
    finished_run: Path, tmp_path: Path
) -> None:
    """The refusal of a damaged latest says to point `latest` at an earlier file; the resume that followed the hint
    then warned that the damaged file was written later and said to `echo` its name into `latest` again."""
    run = _finished(finished_run, tmp_path / "r")
    ckpts = run / schema.CHECKPOINT_DIR
    damaged = ckpts / ck.checkpoint_file_name(6)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    damaged.write_bytes(bytes(data))
    (ckpts / schema.LATEST_POINTER).write_text(ck.checkpoint_file_name(3) + "\n")
    proc = run_train(run, "train.steps=9", resume=True)
    assert proc.returncode == 0 and "at step 3" in proc.stdout, proc.stderr
    assert f"echo {damaged.name}" not in proc.stderr
    said = f"{damaged} was written after the checkpoint `latest` names, but it is damaged (checkpoint {damaged} is"
    assert said in " ".join(proc.stderr.split())
    assert "this run continues from step 3" in proc.stderr


def test_a_truncated_checkpoint_is_said_to_be_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    import torch

    torch.save({"model": {"w": torch.ones(1000)}, "step": 1}, path)
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(ck.CheckpointError, match="is damaged"):
        ck.load_checkpoint(path)


@SHARES_THE_FINISHED_RUN
@pytest.mark.parametrize("why", ["nothing to do", "no pointer", "truncated"])
def test_a_refused_resume_leaves_a_finished_run_finished(finished_run: Path, tmp_path: Path, why: str) -> None:
    """The refused attempt's boot, error and end records made the tools judge the finished run by it: `crashed`.
    What is cheap to tell is refused before anything is written."""
    from nsa_tui.health import evaluate
    from nsa_tui.runs import load_run

    run = _finished(finished_run, tmp_path / "r")
    ckpts = run / schema.CHECKPOINT_DIR
    steps = "train.steps=6"
    if why == "no pointer":
        (ckpts / schema.LATEST_POINTER).unlink()
        steps = "train.steps=9"
    elif why == "truncated":  # a copy cut short (damaged bytes inside are found by the load, after the boot)
        latest = ckpts / ck.checkpoint_file_name(6)
        latest.write_bytes(latest.read_bytes()[:-500])
        steps = "train.steps=9"
    before = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    proc = run_train(run, steps, resume=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert {"nothing to do": "nothing to do", "no pointer": "no 'latest' pointer", "truncated": "is damaged"}[why] in (
        proc.stderr
    )
    assert {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert evaluate(load_run(run), time.time()).state == "finished"


@SHARES_THE_FINISHED_RUN
def test_a_forced_fresh_start_drops_the_earlier_runs_pointers_when_run_json_takes_its_id(
    finished_run: Path, tmp_path: Path
) -> None:
    """run.json took the fresh start's new run id at the model phase, and the earlier run's pointers went only at the
    train phase: a start that died in between (its compile phase, its DDP wrap) left `latest` naming the earlier
    run's checkpoint, so a plain --resume met "belongs to another run". By the compile phase both have changed
    (train.compile: its torch.compile import holds the phase for a while, where the test looks)."""
    import json

    run = _finished(finished_run, tmp_path / "r")
    earlier_id = json.loads((run / schema.RUN_JSON).read_text())[schema.RUN_ID]
    cmd = [*train_cmd(run, "train.steps=4", "train.compile=true"), "--force"]
    env = clean_env(NSA_TEST_SLOW_STEP="1:60")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def compiling() -> list[dict]:
        try:
            return [r for r in records(run) if r.get("phase") == "compile"][1:]  # the first is the earlier run's
        except ValueError:  # a line being written
            return []

    try:
        wait_for(compiling, 120, "its compile phase", interval=0.01)
        latest = (run / "checkpoints" / schema.LATEST_POINTER).exists()
        run_id = json.loads((run / schema.RUN_JSON).read_text())[schema.RUN_ID]
    finally:
        proc.kill()
        proc.wait()
    assert run_id != earlier_id
    assert not latest


@SHARES_THE_FINISHED_RUN
def test_a_forced_fresh_start_drops_the_earlier_runs_pointers(finished_run: Path, tmp_path: Path) -> None:
    """After `--force`, checkpoints/best still named the earlier run's checkpoint (latest too) until the new run's
    first eval and save: `nsa sample` loaded the earlier run's weights, the report marked its file best, and a
    --resume of a new run killed before its first save continued the earlier run."""
    run = _finished(finished_run, tmp_path / "r")  # evaluated at its end: a best pointer
    assert ck.read_pointer(run / "checkpoints", schema.BEST_POINTER) is not None
    cmd = [*train_cmd(run, "train.steps=4", "train.save_every=0", "train.eval_every=0"), "--force"]
    env = clean_env(NSA_TEST_SLOW_STEP="1:60")  # step 1 waits: the new run has neither saved nor evaluated yet
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the second train phase: the first is the earlier run's
        trains = wait_for(lambda: [r for r in records(run) if r.get("phase") == "train"][1:], 120, "its train phase")
        train = trains[-1]
        for pointer in (schema.LATEST_POINTER, schema.BEST_POINTER):
            assert not (run / "checkpoints" / pointer).exists(), pointer
    finally:
        proc.kill()
        proc.wait()
    said = "removed the earlier run's checkpoint pointers (checkpoints/latest, checkpoints/best)"
    assert any(w.startswith(said) for w in train["warnings"]), train
    assert (run / "checkpoints" / ck.checkpoint_file_name(6)).is_file()  # the files stay (keep_last prunes them)
