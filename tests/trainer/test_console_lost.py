"""The console's reader dying (the launch wrapper killed) must not end the run: the next print raised BrokenPipeError
in the loop, printing that failed too, and the run ended `error` with no error record and its steps lost."""

from __future__ import annotations

import errno
import io
import subprocess

import pytest
from trainer_helpers import REPO, clean_env, records, train_cmd

from nsa_train.runtime.console import ResilientConsole

pytestmark = pytest.mark.slow


def test_training_goes_on_when_the_console_reader_is_gone(tmp_path):
    run = tmp_path / "r"
    proc = subprocess.Popen(
        train_cmd(run, "train.steps=60", "train.log_every=1"),
        cwd=REPO,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # read until training prints its steps, then go away like a killed wrapper
        if line.startswith(b"step 2 "):
            break
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    end = [r for r in records(run) if r["kind"] == "end"][-1]
    assert (end["reason"], end["step"]) == ("completed", 60)
    assert not [r for r in records(run) if r["kind"] == "error"]


class _Broken(io.StringIO):
    def __init__(self, err: OSError) -> None:
        super().__init__()
        self.err = err

    def write(self, text: str) -> int:
        raise self.err


def test_only_a_gone_reader_is_swallowed():
    c = ResilientConsole(_Broken(BrokenPipeError(errno.EPIPE, "Broken pipe")))
    assert c.write("x") == 1 and c.lost and c.write("more") == 4
    with pytest.raises(OSError, match="No space"):
        ResilientConsole(_Broken(OSError(errno.ENOSPC, "No space left on device"))).write("x")
