"""Checkpoint files: atomic under kill -9, strict loading, pruning, safe (weights_only) loading."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from trainer_helpers import REPO, wait_for

from nsa_train.runtime import checkpoint as ck
from nsa_train.telemetry import schema

SAVER = textwrap.dedent(
    """
    import sys, torch
    from pathlib import Path
    from nsa_train.runtime.checkpoint import save_checkpoint
    d = Path(sys.argv[1])
    step = 2
    while True:  # big states so that a kill lands in the middle of a write
        state = {"model": {"w": torch.full((8_000_000,), float(step))}, "step": step}
        save_checkpoint(d, step, state, pointers=("latest",))
        step += 1
    """
)


def test_kill_during_save_leaves_a_loadable_checkpoint(tmp_path: Path) -> None:
    d = tmp_path / "checkpoints"
    ck.save_checkpoint(d, 1, {"model": {"w": torch.full((10,), 1.0)}, "step": 1}, pointers=("latest",))
    child = subprocess.Popen([sys.executable, "-c", SAVER, str(d)], cwd=REPO)
    try:
        # wait until a save is in flight (its temp file exists), then kill without warning
        wait_for(
            lambda: list(d.glob(".*.tmp")) and ck.read_pointer(d, "latest").name != "step_00000001.pt",
            60,
            "a second save in flight",
        )
        wait_for(lambda: list(d.glob(".step_*.tmp")), 30, "a checkpoint temp file")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    latest = ck.read_pointer(d, "latest")
    state = ck.load_checkpoint(latest)
    step = state["step"]
    assert latest.name == ck.checkpoint_file_name(step)
    assert torch.equal(state["model"]["w"], torch.full_like(state["model"]["w"], float(step)))
    # every complete file loads; the torn temp file is not a checkpoint and is cleaned up
    for p in ck.list_checkpoints(d):
        ck.load_checkpoint(p)
    ck.remove_stale_temps(d)
    assert not list(d.glob(".*.tmp"))


def test_strict_load_names_missing_and_mismatched_keys(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    state = model.state_dict()
    del state["1.bias"]
    state["0.weight"] = torch.zeros(3, 4)
    with pytest.raises(ck.CheckpointError, match=r"missing: 1\.bias.*shape mismatch: 0\.weight"):
        ck.load_model_state(model, state, tmp_path / "x.pt")


def test_checkpoint_with_pickled_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "step": 1, "obj": Path("/")}, path)  # arbitrary class: not weights_only-safe
    with pytest.raises(ck.CheckpointError, match="cannot load checkpoint"):
        ck.load_checkpoint(path)


def test_prune_keeps_last_n_and_best(tmp_path: Path) -> None:
    d = tmp_path / "checkpoints"
    for step in range(1, 7):
        pointers = ("latest", schema.BEST_POINTER) if step == 2 else ("latest",)
        ck.save_checkpoint(d, step, {"model": {}, "step": step}, pointers=pointers)
        ck.prune(d, keep_last=2)
    names = [p.name for p in ck.list_checkpoints(d)]
    assert names == [ck.checkpoint_file_name(s) for s in (2, 5, 6)]
    assert ck.read_pointer(d, schema.BEST_POINTER).name == ck.checkpoint_file_name(2)
    assert ck.read_pointer(d, schema.LATEST_POINTER).name == ck.checkpoint_file_name(6)


def test_rng_round_trip() -> None:
    import random

    state = ck.capture_rng()
    a = (random.random(), torch.rand(3))
    ck.restore_rng(state)
    b = (random.random(), torch.rand(3))
    assert a[0] == b[0] and torch.equal(a[1], b[1])


def test_checkpoint_step_reads_back_the_file_names_the_trainer_writes() -> None:
    """The tools read a checkpoint's step from its name (no torch): the inverse of checkpoint_file_name."""
    for step in (0, 78, 300, 123_456_789):
        assert schema.checkpoint_step(ck.checkpoint_file_name(step)) == step
    assert schema.checkpoint_step(schema.checkpoint_name(42)) == 42
    for other in ("best.pt", "step_.pt", "step_12a.pt", "latest", "step_-3.pt", ".step_00000001.pt.tmp"):
        assert schema.checkpoint_step(other) is None


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_is_one_clear_error_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """Found on a 6 MiB tmpfs: torch.save reports a full disk as "RuntimeError: [enforce fail at
    inline_container.cc:672] . unexpected pos ...", with the ENOSPC only as its context, and the trainer printed
    that with a traceback. Here the temp file the save writes is a link to /dev/full, whose writes fail with
    ENOSPC as a full disk's do."""
    ckpt_dir = tmp_path / "checkpoints"
    ckpt_dir.mkdir()
    (ckpt_dir / f".{ck.checkpoint_file_name(10)}.{os.getpid()}{ck.TMP_SUFFIX}").symlink_to("/dev/full")
    state = {"w": torch.zeros(1 << 16)}
    with pytest.raises(ck.CheckpointError) as info:
        ck.save_checkpoint(ckpt_dir, 10, state, (schema.LATEST_POINTER,))
    msg = str(info.value)
    assert msg.startswith(f"cannot write step_00000010.pt in {ckpt_dir}: no space left on device (")
    assert "continue with --resume" in msg and "\n" not in msg
    assert list(ckpt_dir.iterdir()) == []  # no partial file, no pointer
    assert ck.save_checkpoint(ckpt_dir, 10, state).exists()  # the disk has room again: the same save works


def test_other_write_errors_are_not_called_a_full_disk(tmp_path: Path) -> None:
    ckpt_dir = tmp_path / "checkpoints"
    ckpt_dir.mkdir()
    (ckpt_dir / f".{ck.checkpoint_file_name(10)}.{os.getpid()}{ck.TMP_SUFFIX}").mkdir()  # open() fails: EISDIR
    with pytest.raises(IsADirectoryError):
        ck.save_checkpoint(ckpt_dir, 10, {"w": torch.zeros(4)})


def test_prune_keeps_the_last_written_not_the_highest_steps(tmp_path: Path) -> None:
    """A fresh run started in a directory with an earlier run's checkpoints (higher steps): its own
    checkpoints are the ones kept, the old ones go first."""
    import os

    d = tmp_path / "checkpoints"
    for step in (500, 600, 700):  # the earlier run's, written an hour ago
        p = ck.save_checkpoint(d, step, {"model": {}, "step": step}, pointers=("latest",))
        os.utime(p, (p.stat().st_mtime - 3600,) * 2)
    for step in (100, 200, 300):  # the new run's
        ck.save_checkpoint(d, step, {"model": {}, "step": step}, pointers=("latest",))
        ck.prune(d, keep_last=2)
    assert [p.name for p in ck.list_checkpoints(d)] == [ck.checkpoint_file_name(s) for s in (200, 300)]
    assert ck.read_pointer(d, schema.LATEST_POINTER).name == ck.checkpoint_file_name(300)
