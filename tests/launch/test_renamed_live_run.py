"""A launched run whose directory is renamed while it trains (`mv runs/a runs/b`: the trainer follows, docs/telemetry.md
`moved`). Every command took it for crashed: its trainer's command line names runs/a, and launch.json was written
there, so `nsa status`, `nsa runs`, `nsa watch` and `nsa report` said `crashed` (process_exited, "it is a copy"),
`nsa dump` "not this run's trainer", `nsa halt` "not running" (also over --host); `nsa launch --name a` offered
`--force`, which killed the renamed run, without saying that its session runs runs/b. One real launch, renamed once,
stands for all of them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from nsa_train.telemetry import schema

from .helpers import TINY, nsa, records, tmux_sessions, wait_for

pytestmark = pytest.mark.slow


def _state(res) -> str:
    assert res.returncode in (0, 1), res.stdout + res.stderr  # a tiny run's own warnings are its business
    return json.loads(res.stdout)["state"]


def _dashboard_state(run_dir: Path) -> str:
    from nsa_tui.health import build_rules, evaluate
    from nsa_tui.tail.local import LocalRunSource
    from nsa_tui.watch.model import TMUX_EVERY_S, RunModel

    m = RunModel(run_dir.name, LocalRunSource(run_dir, force_poll=True), where=str(run_dir), check_liveness=True)
    try:
        for i in range(3):  # the third with the liveness check, launch.json read
            m.pump(now=i * (TMUX_EVERY_S + 1))
        return evaluate(m.history, time.time(), build_rules(m.history.config)).state
    finally:
        m.source.close()


def test_a_run_renamed_while_it_trains_is_judged_as_itself(runs_dir, tmux_socket, sshd, tmp_path):
    was, now = runs_dir / "a", runs_dir / "b"
    res = nsa("launch", "--name", "a", *TINY, "--set", "train.steps=1000000")  # trains until halted
    assert res.returncode == 0, res.stderr
    wait_for(lambda: any(r.get("kind") == "progress" for r in records(was)), 90, "progress records")
    was.rename(now)
    wait_for(lambda: any(r.get("kind") == schema.KIND_MOVED for r in records(now)), 60, "the trainer's moved record")

    # a copy made of it now holds the trainer's `moved` record too: still a copy, judged crashed as before
    copy = shutil.copytree(now, runs_dir / "b-copy", ignore=shutil.ignore_patterns("*.tmp*"))
    status = nsa("status", str(copy))
    assert f"its launch.json was written for {was}, so it is a copy of that run" in status.stdout, status.stdout
    shutil.rmtree(copy)

    for run in ("a", "b"):  # the old name followed to the new directory, with a note
        status = nsa("status", "--json", run)
        assert _state(status) == "running", status.stdout
    assert {o["run"]: o["state"] for o in map(json.loads, nsa("runs", "--json").stdout.splitlines())} == {
        "b": "running"
    }
    assert _dashboard_state(now) == "running"
    out = tmp_path / "report"
    assert nsa("report", "b", "--out", str(out)).returncode == 0
    assert "| b | nsa-v1 | running |" in (out / "report.md").read_text()
    dump = nsa("dump", "b")
    assert dump.returncode == 0 and "stackdump_rank0_" in dump.stdout, dump.stdout + dump.stderr
    trainer = next(r["pid"] for r in reversed(records(now)) if r.get("pid"))
    os.kill(trainer, signal.SIGSTOP)  # its ranks are this run's: rank_stopped is judged on them (pending at once)
    try:
        status = nsa("status", "--json", "b")
        assert "rank_stopped" in [p["rule"] for p in json.loads(status.stdout)["pending"]], status.stdout
    finally:
        os.kill(trainer, signal.SIGCONT)

    # the same over ssh: the host's nsa judges it (this machine is the host)
    status = nsa("status", "--json", "--host", sshd.host, "a")
    assert _state(status) == "running", status.stdout
    listed = nsa("runs", "--json", "--host", sshd.host)
    assert [(o["run"], o["state"]) for o in map(json.loads, listed.stdout.splitlines())] == [("b", "running")]

    # a launch of its old name: the session nsa-a is taken by the renamed run, which --force must not kill (it did)
    refused = f"error: tmux session nsa-a runs {now} (renamed from {was}): --force does not stop a run that goes on "
    refused += f"in another directory; stop it first (`nsa halt {now}`), or choose another --name\n"
    for force in ((), ("--force",)):
        res = nsa("launch", "--name", "a", *force, *TINY)
        assert (res.returncode, res.stderr) == (1, refused), res.stdout + res.stderr
    assert tmux_sessions() == ["nsa-a"] and not was.exists()
    assert not any(r.get("kind") == schema.KIND_END for r in records(now))

    halt = nsa("halt", "--host", sshd.host, "a", "--wait", "120", timeout=180)
    assert halt.returncode == 0 and "reason halt" in halt.stdout, halt.stdout + halt.stderr
    end = [r for r in records(now) if r.get("kind") == schema.KIND_END]
    assert end and end[-1]["reason"] == "halt"
    wait_for(lambda: tmux_sessions() == [], 60, "the tmux session to close")
