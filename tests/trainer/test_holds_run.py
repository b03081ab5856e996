"""One definition of "holds a run" (nsa_train.telemetry.holds): the trainer's start guard, `nsa launch`'s preflight,
`nsa check --run-dir` and the tools' run listing answer alike for every state of a directory."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from trainer_helpers import run_train

from nsa_train.config import load_config
from nsa_train.telemetry import schema
from nsa_tui.check_cheap import FAIL, PASS, WARN, check_run_dir
from nsa_tui.launch.preflight import occupancy
from nsa_tui.rundir import holds_run

ROW = '{"v": 1, "ts": 1.0, "kind": "boot", "rank": 0, "step": 0, "pid": 1}\n'


def _full_run(d: Path) -> None:
    (d / schema.CHECKPOINT_DIR).mkdir()
    (d / schema.CHECKPOINT_DIR / "step_00000004.pt").write_bytes(b"PK\x03\x04")
    (d / schema.CHECKPOINT_DIR / schema.LATEST_POINTER).write_text("step_00000004.pt\n")
    (d / schema.TRAINING_CSV).write_text("step,loss\n4,2.0\n")
    (d / schema.VAL_CSV).write_text("step,val_loss,val_ppl\n4,2.1,8.2\n")
    (d / schema.RUN_JSON).write_text("{}\n")
    (d / schema.heartbeat_name(0)).write_text(ROW)
    (d / schema.LAUNCH_JSON).write_text('{"ts": 1.0}\n')
    (d / schema.CONSOLE_LOG).write_text("step 4\n")
    (d / schema.EXIT_STATUS).write_text("0\n")


def _checkpoints_only(d: Path) -> None:
    (d / schema.CHECKPOINT_DIR).mkdir()
    (d / schema.CHECKPOINT_DIR / "step_00000004.pt").write_bytes(b"PK\x03\x04")


# state -> (how to make it, a fresh start there needs --resume or --force, the tools list it as a run)
STATES = {
    "empty dir": (lambda d: None, False, False),
    "only a .HALT": (lambda d: (d / schema.HALT_FILE).write_text("halt\n"), False, False),
    "only run.json": (lambda d: (d / schema.RUN_JSON).write_text("{}\n"), True, True),
    "only training.csv": (lambda d: (d / schema.TRAINING_CSV).write_text("step,loss\n3,2.5\n"), True, True),
    "checkpoints only": (_checkpoints_only, True, True),
    "a full run": (_full_run, True, True),
    # an attempt that stopped at a config typo: listed, judged, and the mended command starts there
    "only a heartbeat": (lambda d: (d / schema.heartbeat_name(0)).write_text(ROW), False, True),
    "an earlier launch's files": (lambda d: (d / schema.LAUNCH_JSON).write_text('{"ts": 1.0}\n'), True, True),
}


@pytest.mark.parametrize("state", list(STATES))
def test_the_trainer_and_the_tools_agree_whether_a_directory_holds_a_run(
    state: str, tmp_path: Path, tmux_socket: str
) -> None:
    make, earlier, listed = STATES[state]
    d = tmp_path / "r"
    d.mkdir()
    make(d)
    cfg = load_config(None, [])
    # the tools first: the trainer's attempt writes its records there
    assert holds_run(d) is listed
    assert occupancy(d, "nsa-holds-test", cfg).previous_run is earlier  # `nsa launch` (no --force)
    row = check_run_dir(d, fresh_start=True)  # `nsa check --run-dir`
    assert row.status == (WARN if earlier else PASS) and row.status != FAIL
    # the trainer: refused before its boot record, or on to the config (whose typo stops it at once)
    proc = run_train(d, "train.stepz=1", timeout=60)
    assert proc.returncode == 2
    refused = f"{d} holds an earlier run (" in proc.stderr
    assert refused is earlier, proc.stderr
    assert ("unknown key 'train.stepz'" in proc.stderr) is not earlier, proc.stderr


def test_the_trainer_leaves_out_the_files_of_the_launch_that_started_it(tmp_path: Path) -> None:
    """`nsa launch` writes launch.json and console.log before its trainer starts, having asked first: those are this
    start's own, told by launch.json's ts, the NSA_LAUNCH_TIME the trainer was given."""
    d = tmp_path / "r"
    d.mkdir()
    now = time.time()
    (d / schema.LAUNCH_JSON).write_text(json.dumps({"ts": now}))
    (d / schema.CONSOLE_LOG).write_text("")
    proc = run_train(d, "train.stepz=1", timeout=60, NSA_LAUNCH_TIME=f"{now:.6f}")
    assert "unknown key 'train.stepz'" in proc.stderr and "holds an earlier run" not in proc.stderr, proc.stderr
    # an earlier launch's (another time): an earlier run, by hand or by a later launch
    proc = run_train(d, "train.stepz=1", timeout=60, NSA_LAUNCH_TIME=f"{now - 60:.6f}")
    assert f"{d} holds an earlier run ({schema.LAUNCH_JSON}, {schema.CONSOLE_LOG})" in proc.stderr, proc.stderr
