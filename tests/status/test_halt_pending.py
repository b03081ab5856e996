"""A `.HALT` that waits on a live run is said: `nsa halt --wait 0` on a hung run left it there for minutes while
`nsa status`, `nsa runs` and the dashboard said only `stalled critical`."""

from __future__ import annotations

import json
import os
import time

from fixtures.runs import make_v1_run
from typer.testing import CliRunner

from nsa_train.telemetry import schema
from nsa_tui.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def _halt(run_dir, age_s: float) -> float:
    halt = run_dir / schema.HALT_FILE
    halt.write_text("halt requested by nsa halt\n")
    ts = time.time() - age_s
    os.utime(halt, (ts, ts))
    return os.stat(halt).st_mtime


def test_a_pending_halt_on_a_hung_run_is_said_by_status_json_and_runs(runs_dir, monkeypatch):
    make_v1_run(runs_dir / "hung", state="stalled")
    ts = _halt(runs_dir / "hung", 250)
    clock = time.strftime("%H:%M", time.localtime(ts))

    res = invoke("status", "hung")
    first = res.stdout.splitlines()[0]
    assert " stalled " in first and f"halt requested {clock}, 4m1" in first, res.stdout  # 4m10s ago, give or take

    obj = json.loads(invoke("status", "--json", "hung").stdout)
    assert obj["state"] == "stalled" and obj["halt_requested"] is True and obj["halt_requested_ts"] == ts

    monkeypatch.delenv("COLUMNS", raising=False)  # whole rows: at 80 columns the state's halt note wraps
    row = next(ln for ln in invoke("runs").stdout.splitlines() if ln.startswith("hung"))
    assert f"stalled (halt requested {clock})" in row, row


def test_no_halt_is_said_without_a_halt_file_or_once_the_run_ended(runs_dir):
    make_v1_run(runs_dir / "live", state="running")
    make_v1_run(runs_dir / "done", state="halted")
    _halt(runs_dir / "done", 5)  # the trainer had not removed it yet: the halt is made, not pending
    for name in ("live", "done"):
        obj = json.loads(invoke("status", "--json", name).stdout)
        assert obj["halt_requested"] is False and obj["halt_requested_ts"] is None, obj
        assert "halt requested" not in invoke("status", name).stdout
    assert "halt requested" not in invoke("runs").stdout
