"""The trainer's own disk check at its start (a trainer started by hand, not by `nsa launch`): not enough room for
what the run needs (nsa launch's estimate) is one line and exit status 2 before the data phase; tight is a start
warning. On real small file systems: a tmpfs mounted for the test (root only; skipped where mount is not allowed)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from trainer_helpers import TINY, records, run_train, training, wait_for

from nsa_train.config import load_config
from nsa_train.config.flops import estimate_param_count
from nsa_train.runtime.disk_room import FAIL, PASS, checkpoint_bytes, disk_needed_bytes, disk_room, size_text
from nsa_train.telemetry import schema
from nsa_train.telemetry.units import human_count

STEPS = "train.steps=2"
NEED = disk_needed_bytes(cfg := load_config(None, [*TINY, STEPS]), estimate_param_count(cfg))  # 5.1 MiB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[callable]:
    """mount(bytes) -> a directory on a tmpfs of that size, unmounted at the end."""
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({proc.stderr.strip() or proc.returncode}): needs root")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=True)


def test_a_disk_without_room_is_refused_before_the_data_phase(small_disk) -> None:
    run = small_disk(NEED // 3) / "r"
    proc = run_train(run, STEPS)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    [error] = [ln for ln in proc.stderr.splitlines() if ln.startswith("error")]
    params = human_count(estimate_param_count(cfg))  # 74.3K: it read 0.07M
    assert error.startswith(f"error: disk: not enough: ~{size_text(NEED)} for checkpoints ({params} params"), error
    assert error.endswith(
        ". To fit: free space there, or choose a --run-dir with room; refused before anything large was written"
    )
    recs = records(run)
    assert [r["message"] for r in recs if r["kind"] == "error"] == [error.removeprefix("error: ")]
    assert not any(r.get("phase") == schema.PHASE_DATA for r in recs)  # nothing read, nothing large written
    assert recs[-1]["kind"] == "end" and recs[-1]["exit_status"] == 2
    assert not list((run / schema.CHECKPOINT_DIR).glob(schema.CHECKPOINT_GLOB))


def test_a_tight_disk_is_a_start_warning(small_disk) -> None:
    """Said at the config phase, with its other start warnings (the run goes on: stopped here once it is said)."""
    run = small_disk(NEED * 3 // 2) / "r"  # room for the checkpoints, not twice over
    with training(run, STEPS) as proc:

        def config_done() -> dict | None:
            return next((r for r in records(run) if r.get("phase") == schema.PHASE_CONFIG and r.get("done")), None)

        done = wait_for(config_done, 60, "the config phase")
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    [warning] = [ln for ln in out.splitlines() if ln.startswith("warning: disk")]
    assert warning.startswith("warning: disk: tight (logs and TensorBoard grow too): ~"), warning
    assert warning.removeprefix("warning: ") in done["warnings"]


def test_the_checkpoints_a_run_holds_already_count_as_room(tmp_path: Path) -> None:
    """A resume (or a --force start, which prunes the earlier run's checkpoints as it saves) reuses the room its
    checkpoints hold: refused for the free space they took, a run that started with the room could not resume."""
    run = tmp_path / "r"
    held = run / schema.CHECKPOINT_DIR / "step_00000002.pt"
    held.parent.mkdir(parents=True)
    params = estimate_param_count(cfg)
    free = NEED // 2
    assert disk_room(cfg, run, params, lambda _p: free).status == FAIL
    with open(held, "wb") as f:
        f.truncate(4 * checkpoint_bytes(params))  # sparse: its size is what counts
    room = disk_room(cfg, run, params, lambda _p: free)
    assert room.status != FAIL and "held by the checkpoints there already" in room.reason, room
    # whatever it holds, the one being written needs its own room
    with open(held, "wb") as f:
        f.truncate(100 * NEED)
    assert disk_room(cfg, run, params, lambda _p: NEED).status == PASS
    assert disk_room(cfg, run, params, lambda _p: checkpoint_bytes(params)).status == FAIL


def test_a_run_without_room_is_told_how_many_checkpoints_fit(tmp_path: Path) -> None:
    """After a full disk, a resume was refused with only the numbers (`not enough: ~... for checkpoints (...), 32 MiB
    free`), though fewer kept checkpoints fitted: the line names the keep_last that fits, and no other --run-dir
    for a run that holds its checkpoints (a resume continues them where they are)."""
    kept = [*TINY, STEPS, "train.keep_last=2"]
    cfg = load_config(None, kept)
    params = estimate_param_count(cfg)
    one = checkpoint_bytes(params)
    run = tmp_path / "r"
    (run / schema.CHECKPOINT_DIR).mkdir(parents=True)
    for step in (5, 10):
        with open(run / schema.CHECKPOINT_DIR / f"step_{step:08d}.pt", "wb") as f:
            f.truncate(one)
    free = int(2.3 * one)  # keep_last 2 may need two more (best left behind, one in flight): 2.8 with the margin
    room = disk_room(cfg, run, params, lambda _p: free)
    assert room.status == FAIL, room
    assert room.reason.endswith(
        ". To fit: free space there, or keep fewer checkpoints (`--set train.keep_last=1` fits)"
    ), room.reason
    assert disk_room(load_config(None, [*kept, "train.keep_last=1"]), run, params, lambda _p: free).status != FAIL
    # a fresh start: the largest keep_last that fits, and another run directory
    fresh = load_config(None, [*TINY, STEPS, "train.keep_last=5"])
    room = disk_room(fresh, tmp_path / "new", params, lambda _p: int(6.1 * one))  # keep_last 3: 6.0 with the margin
    assert room.status == FAIL and room.reason.endswith(
        ". To fit: free space there, or keep fewer checkpoints (`--set train.keep_last=3` fits), or choose a "
        "--run-dir with room"
    ), room.reason
