"""Checkpoint files: atomic under kill -9, strict loading, pruning, safe (weights_only) loading."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
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


def test_a_gpu_rng_state_is_the_ranks_own_and_an_older_list_is_read_where_it_has_the_device() -> None:
    """Review revBQ: every visible GPU's generator state was saved and restored with set_rng_state_all, an
    IndexError on a machine that sees fewer GPUs than the one that saved (a run of 8 resumed on 1, or with
    CUDA_VISIBLE_DEVICES=0). A rank saves its own device's; an older checkpoint's list gives the entry for the
    rank's device where it has one, and nothing otherwise."""
    own, listed = torch.tensor([1], dtype=torch.uint8), [torch.tensor([i], dtype=torch.uint8) for i in range(8)]
    assert ck.cuda_rng_for({ck.CUDA_RNG: own}, device=0, count=1) is own
    assert ck.cuda_rng_for({ck.CUDA_RNG_ALL: listed}, device=3, count=8) is listed[3]
    assert ck.cuda_rng_for({ck.CUDA_RNG_ALL: listed[:2]}, device=3, count=8) is None  # saved where 2 were seen
    assert ck.cuda_rng_for({ck.CUDA_RNG_ALL: listed}, device=1, count=1) is None  # a device this machine lacks
    assert ck.cuda_rng_for({}, device=0, count=1) is None  # a CPU run's


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


def _save(d: Path, step: int, pointers: tuple[str, ...] = (schema.LATEST_POINTER,)) -> Path:
    return ck.save_checkpoint(d, step, {"model": {}, "step": step}, pointers=pointers)


def _copy_with_new_mtimes(src: Path, dst: Path, touched: str) -> None:
    """As `cp -r` (or scp -r without -p, rsync -r without -t) copies: every file gets a new mtime, in directory
    order; then ``touched`` is the newest (the reviewer's `touch`, or the copy's own order)."""
    shutil.copytree(src, dst, copy_function=shutil.copyfile)
    t = time.time() + 60
    for p in sorted(dst.iterdir()):
        os.utime(p, (t, t))
    os.utime(dst / touched, (t + 5, t + 5))


def test_a_copy_with_new_mtimes_prunes_by_write_order_and_names_no_older_file(tmp_path: Path) -> None:
    """A finished run's directory copied without its mtimes: the resume warned that step 50 was written after
    `latest` (and said to point `latest` at it), and keep_last pruned steps 100 and 130 and kept step 50."""
    live = tmp_path / "live" / "checkpoints"
    for step in (50, 100, 130):
        _save(live, step)
    copy = tmp_path / "copy" / "checkpoints"
    _copy_with_new_mtimes(live, copy, ck.checkpoint_file_name(50))
    latest = ck.read_pointer(copy, schema.LATEST_POINTER)
    assert latest == copy / ck.checkpoint_file_name(130)
    assert ck.written_after(copy, latest) == []
    assert ck.other_checkpoints_hint(copy).endswith(
        f"(echo {ck.checkpoint_file_name(130)} > {copy / 'latest'}) and resume again"
    )
    for step in (135, 140):
        _save(copy, step)
        ck.prune(copy, keep_last=3)
    assert [p.name for p in ck.list_checkpoints(copy)] == [ck.checkpoint_file_name(s) for s in (130, 135, 140)]
    # the files there when step 140 was saved, in the order they were written (step 50's line went with its file)
    order = [ck.checkpoint_file_name(s) for s in (100, 130, 135, 140)]
    assert (copy / schema.CHECKPOINT_ORDER).read_text() == "".join(f"{n}\n" for n in order)


def test_a_fresh_start_over_an_earlier_run_prunes_the_earlier_runs_files_after_a_copy(tmp_path: Path) -> None:
    """--force over an earlier run writes step_100 after its step_700: the new run's files are the last written
    (by the order file, not the step), in a copy too, where the earlier run's files may look newest."""
    d = tmp_path / "a" / "checkpoints"
    for step in (500, 600, 700):  # the earlier run's
        _save(d, step)
    for pointer in (schema.LATEST_POINTER, schema.BEST_POINTER):
        (d / pointer).unlink(missing_ok=True)  # what the fresh start does (Trainer._drop_earlier_pointers)
    _save(d, 100)
    copy = tmp_path / "b" / "checkpoints"
    _copy_with_new_mtimes(d, copy, ck.checkpoint_file_name(700))
    assert ck.written_after(copy, copy / ck.checkpoint_file_name(100)) == []
    for step in (200, 300):
        _save(copy, step)
        ck.prune(copy, keep_last=2)
    assert [p.name for p in ck.list_checkpoints(copy)] == [ck.checkpoint_file_name(s) for s in (200, 300)]


def test_a_save_cut_before_its_pointer_is_named_whatever_the_mtimes(tmp_path: Path) -> None:
    """A kill between the order file and `latest`: the file is recorded after `latest`'s, so it is named as written
    after it (with its lower step too, after a fresh start over an earlier run), even when its mtime says older."""
    d = tmp_path / "checkpoints"
    _save(d, 60)
    cut = _save(d, 5, pointers=())  # a fresh start's first save, killed before `latest` moved off step 60
    os.utime(cut, (1, 1))
    assert ck.written_after(d, d / ck.checkpoint_file_name(60)) == [cut]
    ck.prune(d, keep_last=1)
    assert [p.name for p in ck.list_checkpoints(d)] == [cut.name, ck.checkpoint_file_name(60)]  # latest's stays


def test_a_file_the_order_does_not_name_is_newer_by_mtime_only_with_a_higher_step(tmp_path: Path) -> None:
    """A save cut between its file and its line in the order file leaves a newer file it does not name: named by its
    mtime, when its step is past `latest`'s, and kept by the prune of the next save. A lower step's file is never
    called newer by its mtime alone: the mtime is what a copy changes."""
    d = tmp_path / "checkpoints"
    for step in (4, 8):
        _save(d, step)
    t = time.time() + 10  # after the order file was last written
    cut = d / ck.checkpoint_file_name(12)
    shutil.copyfile(d / ck.checkpoint_file_name(8), cut)  # whole, never recorded
    os.utime(cut, (t, t))
    latest = d / ck.checkpoint_file_name(8)
    assert ck.written_after(d, latest) == [cut]
    older = d / ck.checkpoint_file_name(2)
    shutil.copyfile(d / ck.checkpoint_file_name(4), older)  # e.g. a file from before the order file, copied last
    os.utime(older, (t + 5, t + 5))
    assert ck.written_after(d, latest) == [cut]
    _save(d, 9)  # the resume from step 8 saves: the cut file came before it
    ck.prune(d, keep_last=3)
    assert [p.name for p in ck.list_checkpoints(d)] == [ck.checkpoint_file_name(s) for s in (8, 9, 12)]


def test_a_directory_without_an_order_file_names_a_cut_save_but_no_lower_step(tmp_path: Path) -> None:
    """A run written before the order file existed: a whole file newer than `latest`'s and past its step (a save cut
    before its pointer) is still named, but a lower step than `latest`'s is never said to be newer on an mtime alone
    (a copy's)."""
    d = tmp_path / "checkpoints"
    for step in (4, 8, 12):
        _save(d, step, pointers=() if step == 12 else (schema.LATEST_POINTER,))
    (d / schema.CHECKPOINT_ORDER).unlink(missing_ok=True)
    t = time.time()
    for step, at in ((8, t), (12, t + 5), (4, t + 10)):
        os.utime(d / ck.checkpoint_file_name(step), (at, at))
    assert ck.written_after(d, d / ck.checkpoint_file_name(8)) == [d / ck.checkpoint_file_name(12)]
    assert ck.other_checkpoints_hint(d).startswith(f". {d} holds step_00000004.pt, step_00000008.pt, step_00000012.pt")


def test_the_hint_keeps_the_order_files_newest_and_steps_over_a_cut_one(tmp_path: Path) -> None:
    """With an order file the hint names its newest, not the highest step (a fresh start's step 100 after an earlier
    run's step 700), whatever the mtimes; a newest file cut short (a copy that stopped) is stepped over and said."""
    d = tmp_path / "checkpoints"
    for step in (500, 700):  # an earlier run's
        _save(d, step)
    for step in (100, 200):  # the fresh start's, written after them
        _save(d, step)
    (d / schema.LATEST_POINTER).unlink()
    os.utime(d / ck.checkpoint_file_name(700), (time.time() + 60,) * 2)
    pointer = d / schema.LATEST_POINTER
    assert ck.other_checkpoints_hint(d).endswith(f"(echo {ck.checkpoint_file_name(200)} > {pointer}) and resume again")
    cut = d / ck.checkpoint_file_name(200)
    cut.write_bytes(cut.read_bytes()[:-100])  # its zip end record gone
    assert ck.other_checkpoints_hint(d).endswith(
        f"(echo {ck.checkpoint_file_name(100)} > {pointer}: the newest whole one; {cut.name} is cut short or "
        "damaged) and resume again"
    )


def test_a_copy_of_a_directory_without_an_order_file_prunes_its_highest_steps_last(tmp_path: Path) -> None:
    """The reviewer's copy of a run written before the order file existed: resumed, its saves pruned steps 100 and
    130 and kept step 50, which the copy had made newest."""
    live = tmp_path / "live" / "checkpoints"
    for step in (50, 100, 130):
        _save(live, step)
    (live / schema.CHECKPOINT_ORDER).unlink(missing_ok=True)
    copy = tmp_path / "copy" / "checkpoints"
    _copy_with_new_mtimes(live, copy, ck.checkpoint_file_name(50))
    assert ck.written_after(copy, copy / ck.checkpoint_file_name(130)) == []
    for step in (135, 140):
        _save(copy, step)
        ck.prune(copy, keep_last=3)
    assert [p.name for p in ck.list_checkpoints(copy)] == [ck.checkpoint_file_name(s) for s in (130, 135, 140)]


def test_an_earlier_runs_files_without_an_order_file_are_pruned_first(tmp_path: Path) -> None:
    """A fresh start over a run from before the order file: that run's higher steps are its own, older ones (by the
    order the new run records), in a copy too, and the new run's files are kept."""
    d = tmp_path / "a" / "checkpoints"
    for step in (500, 600, 700):
        _save(d, step)
    (d / schema.CHECKPOINT_ORDER).unlink(missing_ok=True)
    (d / schema.LATEST_POINTER).unlink()  # the fresh start drops the earlier run's pointers
    _save(d, 100)
    copy = tmp_path / "b" / "checkpoints"
    _copy_with_new_mtimes(d, copy, ck.checkpoint_file_name(700))
    assert ck.written_after(copy, copy / ck.checkpoint_file_name(100)) == []
    _save(copy, 200)
    ck.prune(copy, keep_last=3)
    assert [p.name for p in ck.list_checkpoints(copy)] == [ck.checkpoint_file_name(s) for s in (100, 200, 700)]
