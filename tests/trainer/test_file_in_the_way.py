"""A file where a directory is needed (the run directory, its checkpoints, a report's --out) is named as such: the
OSError said only "File exists" (or "[Errno 17] File exists: 'x'" from the trainer)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.runs import make_v1_run
from trainer_helpers import REPO, clean_env

from nsa_train.runtime.checkpoint import CheckpointError, check_writable
from nsa_train.runtime.rundir import file_in_the_way


def test_the_file_that_stands_in_the_way_is_found(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert file_in_the_way(tmp_path / "f") == f"{tmp_path / 'f'} is a file, not a directory"
    assert file_in_the_way(tmp_path / "f" / "a" / "b") == f"{tmp_path / 'f'} is a file, not a directory"
    assert file_in_the_way(tmp_path / "new" / "dir") is None and file_in_the_way(tmp_path) is None


def test_the_trainer_and_the_report_say_which_file(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x")
    cmd = [sys.executable, "-m", "nsa_train.train", "--run-dir", str(tmp_path / "taken" / "run")]
    proc = subprocess.run(cmd, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=60)
    want = f"error: cannot create the run directory {tmp_path / 'taken' / 'run'}: {tmp_path / 'taken'} is a file"
    assert proc.returncode == 2 and proc.stderr.startswith(want), proc.stderr
    run = tmp_path / "run"
    (run / "checkpoints").parent.mkdir()
    (run / "checkpoints").write_text("x")
    with pytest.raises(CheckpointError, match=r" is a file, not a directory$"):
        check_writable(run / "checkpoints")
    make_v1_run(tmp_path / "r", steps=20, state="finished")
    cmd = [sys.executable, "-m", "nsa_tui", "report", str(tmp_path / "r"), "--out", str(tmp_path / "taken")]
    proc = subprocess.run(cmd, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        == f"error: cannot write the report to {tmp_path / 'taken'}: {tmp_path / 'taken'} is a file, not a directory"
    )


def test_the_report_names_the_file_it_could_not_write(tmp_path: Path) -> None:
    """A directory named report.md in --out: "cannot write the report to OUT: Is a directory" named OUT, which is a
    directory, as it should be."""
    make_v1_run(tmp_path / "r", steps=20, state="finished")
    (tmp_path / "out" / "report.md").mkdir(parents=True)
    cmd = [sys.executable, "-m", "nsa_tui", "report", str(tmp_path / "r"), "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == (
        f"error: cannot write the report to {tmp_path / 'out'}: Is a directory ({tmp_path / 'out' / 'report.md'})"
    )
