"""One definition of "holds a run" (nsa_train.telemetry.holds): the trainer's start guard, `nsa launch`'s preflight,
`nsa check --run-dir` and the tools' run listing answer alike for every state of a directory."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fixtures.holds_states import STATES
from trainer_helpers import run_train

from nsa_train.config import load_config
from nsa_train.telemetry import schema
from nsa_tui.check_cheap import FAIL, PASS, WARN, check_run_dir
from nsa_tui.launch.preflight import occupancy
from nsa_tui.rundir import holds_run


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
    # --resume is offered only where there is a checkpoint to continue from (a failed start left none)
    resumable = any((d / "checkpoints").glob("step_*.pt"))
    if earlier:
        assert ("--resume" in proc.stderr) is resumable and ("--resume" in row.reason) is resumable, row.reason


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
    # its boot record names that launch, whatever the clocks say of the two times (docs/telemetry.md, boot)
    boot = json.loads((d / schema.heartbeat_name(0)).read_text().splitlines()[0])
    assert boot["kind"] == schema.KIND_BOOT and abs(boot[schema.BOOT_LAUNCH_TS] - now) < 1e-5, boot
    # an earlier launch's (another time): an earlier run, by hand or by a later launch
    proc = run_train(d, "train.stepz=1", timeout=60, NSA_LAUNCH_TIME=f"{now - 60:.6f}")
    assert f"{d} holds an earlier run ({schema.LAUNCH_JSON}, {schema.CONSOLE_LOG})" in proc.stderr, proc.stderr
