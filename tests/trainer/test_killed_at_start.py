"""A trainer started by hand (no `nsa launch`: no tmux session, no launch.json) and SIGKILLed early in its start,
before it wrote run.json: `nsa status` and `nsa watch` said `starting` for up to `stuck_at_start`'s 900 s though its
process was gone (only run.json's host said where its pids could be checked). Its boot record names the host too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from fixtures.cli import invoke
from trainer_helpers import records, training, wait_for

from nsa_train.telemetry import schema
from nsa_tui.health import build_rules, evaluate
from nsa_tui.tail.local import LocalRunSource
from nsa_tui.watch.model import TMUX_EVERY_S, RunModel

pytestmark = pytest.mark.slow


def _status(run_dir: Path) -> tuple[str, list[str], int]:
    res = invoke("status", "--json", str(run_dir))
    v = json.loads(res.stdout)
    return v["state"], [a["rule"] for a in v["alerts"]], res.exit_code


def _watched(run_dir: Path) -> tuple[str, list[str]]:
    """What `nsa watch` judges after its first read and one liveness check."""
    m = RunModel(run_dir.name, LocalRunSource(run_dir, force_poll=True), where=str(run_dir), check_liveness=True)
    try:
        m.pump(now=0.0)
        m.pump(now=TMUX_EVERY_S + 1)
        v = evaluate(m.history, time.time(), build_rules(m.history.config))
    finally:
        m.source.close()
    return v.state, [a.rule for a in v.alerts]


def _copy(run_dir: Path, name: str, *, host: str | None = None, pid: int | None = None, ago_s: float = 0.0) -> Path:
    """A copy of the run whose records say another boot host, another pid, or were written ``ago_s`` earlier."""
    copy = run_dir.with_name(name)
    copy.mkdir()
    out = []
    for r in records(run_dir):
        r["ts"] -= ago_s
        if pid is not None:
            r["pid"] = pid
        if host is not None and r["kind"] == schema.KIND_BOOT:
            r["host"] = host
        out.append(json.dumps(r) + "\n")
    (copy / schema.heartbeat_name(0)).write_text("".join(out))
    return copy


def test_a_start_killed_before_run_json_is_crashed_at_once(run_dir: Path) -> None:
    with training(run_dir, "train.steps=20") as proc:
        wait_for(lambda: any(r["kind"] == schema.KIND_BOOT for r in records(run_dir)), 120, "the boot record", 0.02)
        os.kill(proc.pid, signal.SIGSTOP)  # held in its start (loading torch, the config): alive, no run.json yet
        try:
            assert not (run_dir / schema.RUN_JSON).exists()
            assert records(run_dir)[0]["pid"] == proc.pid
            assert _status(run_dir) == ("starting", [], 0)
            assert _watched(run_dir) == ("starting", [])
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not (run_dir / schema.RUN_JSON).exists()
    assert _status(run_dir) == ("crashed", ["process_exited"], 2)
    assert _watched(run_dir) == ("crashed", ["process_exited"])

    # another machine's start (its boot record's host): its pid says nothing here, it is starting as it was
    assert _status(_copy(run_dir, "elsewhere", host="elsewhere.example"))[0] == "starting"
    # its pid held since by a process that started after the records: not the trainer
    later = subprocess.Popen(["sleep", "60"])
    try:
        assert _status(_copy(run_dir, "reused", pid=later.pid, ago_s=60))[:2] == ("crashed", ["process_exited"])
    finally:
        later.kill()
        later.wait()
