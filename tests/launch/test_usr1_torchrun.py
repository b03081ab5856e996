"""SIGUSR1 on a launched run, with the real trainer, real torchrun and real tmux: the docs' `pkill -USR1 -f
nsa_train.train` and a seed's `kill -USR1 <torchrun pid>` killed torchrun, the ranks trained on unsupervised,
`nsa status` read `running, health OK` and the halt after it ended with status 138."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from nsa_train.runtime.control import proc_stat_fields
from nsa_train.telemetry import schema

from .helpers import REPO, TINY, exit_status, nsa, records, tmux_sessions, wait_for

pytestmark = pytest.mark.slow


def _ppid(pid: int) -> int:
    return int(proc_stat_fields(pid)[1])  # the fields after the command's name: state, ppid, ...


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _alive(pid: int) -> bool:
    fields = proc_stat_fields(pid)
    return bool(fields) and fields[0] != "Z"


def _docs_pattern() -> str:
    """The pattern docs/telemetry.md gives for signalling the ranks on the box."""
    said = re.search(r"`pkill -USR1 -f '([^']+)'`", (REPO / "docs" / "telemetry.md").read_text())
    assert said, "docs/telemetry.md names no `pkill -USR1 -f '...'` command"
    return said.group(1)


def test_sigusr1_to_torchrun_and_its_wrapper_leaves_the_run_supervised_and_the_ranks_dump(runs_dir, tmux_socket):
    res = nsa("launch", "--name", "usr1", *TINY)
    assert res.returncode == 0, res.stderr
    run_dir = runs_dir / "usr1"
    wait_for(lambda: len([r for r in records(run_dir) if r.get("kind") == "progress"]) >= 2, 90, "progress records")
    rank = next(r for r in records(run_dir) if r.get("kind") == "progress")["pid"]
    torchrun = _ppid(rank)
    wrapper = _ppid(torchrun)
    assert "torch.distributed.run" in _cmdline(torchrun) and "nsa_tui.launch.runner" in _cmdline(wrapper)

    # the docs' command matches the rank, not torchrun (whose command line names nsa_train.train too)
    found = subprocess.run(["pgrep", "-f", _docs_pattern()], capture_output=True, text=True).stdout.split()
    assert str(rank) in found and str(torchrun) not in found and str(wrapper) not in found

    try:
        for pid in (torchrun, wrapper, rank):  # everything `pkill -USR1 -f nsa_train` reaches, and more
            os.kill(pid, signal.SIGUSR1)
        dumps = wait_for(lambda: list(run_dir.glob(schema.STACKDUMP_GLOB)), 30, "the rank's stack dump")
        assert dumps[0].name.startswith("stackdump_rank0_")
        wait_for(lambda: "Thread 0x" in dumps[0].read_text(), 10, "the dump's stacks")
        steps = len([r for r in records(run_dir) if r.get("kind") == "progress"])
        wait_for(lambda: len([r for r in records(run_dir) if r.get("kind") == "progress"]) > steps, 60, "more steps")
        assert _alive(torchrun) and _alive(wrapper) and _alive(rank), "SIGUSR1 ended a process of the run"
        assert exit_status(run_dir) is None
    finally:
        if _alive(rank) and not _alive(torchrun):  # the bug itself: a rank nothing supervises any more
            os.kill(rank, signal.SIGKILL)

    halt = nsa("halt", "usr1", "--wait", "120", timeout=180)
    assert halt.returncode == 0, halt.stdout + halt.stderr
    assert "exit status: 0\n" in halt.stdout, halt.stdout
    wait_for(lambda: tmux_sessions() == [], 30, "the tmux session to close")
