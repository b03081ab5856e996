"""`nsa runs` never cuts a run name, a number or an alert name: not into a pipe (whole rows, no 80-column guess),
not in a narrow terminal (the state's halt note and the alerts wrap between words first), not in a real tmux pane.
Default run names differ only in their time-of-day tail; a cut one no longer says which run a row is."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.runs import make_v1_run

from nsa_train.telemetry import schema

NSA = str(Path(sys.executable).parent / "nsa")
NAMES = ("tiny-cpu-20261207-160850", "tiny-cpu-20261207-160851")


@pytest.fixture
def two_runs(runs_dir: Path) -> Path:
    """The reviewer's pair: a crashed run at step 1 of 100000, and a stalled one with a halt requested (a state
    of short words: `stalled (halt requested 16:26)`)."""
    make_v1_run(runs_dir / NAMES[0], steps=1, total_steps=100000, log_every=1, state="crashed")
    make_v1_run(runs_dir / NAMES[1], steps=290, state="stalled", alerts=["throughput_low"])
    (runs_dir / NAMES[1] / schema.HALT_FILE).touch()
    return runs_dir


def nsa_runs(runs_dir: Path, columns: int | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    res = subprocess.run([NSA, "runs", str(runs_dir)], capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    return res.stdout


def whole_cells(out: str) -> None:
    assert "…" not in out, out
    rows = {name: next(line for line in out.splitlines() if line.startswith(name + " ")) for name in NAMES}
    crashed, stalled = rows[NAMES[0]].split(), rows[NAMES[1]].split()
    assert crashed[1:3] == ["crashed", "1/100000"], out
    assert crashed[-2:] == ["critical", "process_exited"], out
    assert stalled[1] == "stalled" and "290/1160" in stalled and "heartbeat_stale" in stalled, out
    assert "(halt" in out and "requested" in out, out


def test_into_a_pipe_the_rows_are_whole(two_runs: Path) -> None:
    out = nsa_runs(two_runs, None)
    whole_cells(out)
    # at no width limit, one line per row: the state is not wrapped either, and grep finds an alert with its run
    stalled = next(line for line in out.splitlines() if line.startswith(NAMES[1]))
    assert "stalled (halt requested " in stalled and stalled.rstrip().endswith("heartbeat_stale"), out
    assert len(out.splitlines()) == 3, out


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_a_narrow_width_wraps_the_free_text_first(two_runs: Path, columns: int) -> None:
    out = nsa_runs(two_runs, columns)
    whole_cells(out)
    header = out.splitlines()[0]
    table_width = len(header.rstrip())
    if table_width > columns:  # wider only where even the wrapped state and alerts do not fit: at their least
        assert "stalled (halt requested" not in out, out
    else:
        assert all(len(line.rstrip()) <= columns for line in out.splitlines()), out


def test_in_a_tmux_pane_of_80_columns(two_runs: Path, tmux_socket: str) -> None:
    # a real terminal: rich takes the pane's width (-u COLUMNS: the test process's would override it)
    cmd = f"env -u COLUMNS -u LINES {shlex.quote(NSA)} runs {shlex.quote(str(two_runs))}; echo runs-exited-$?; sleep 30"
    tmux = ["tmux", "-L", tmux_socket]
    subprocess.run([*tmux, "new-session", "-d", "-s", "runs", "-x", "80", "-y", "30", cmd], check=True)
    try:
        deadline, screen = time.monotonic() + 60, ""
        while "runs-exited-" not in screen and time.monotonic() < deadline:
            time.sleep(0.3)
            screen = subprocess.run(
                [*tmux, "capture-pane", "-p", "-J", "-t", "runs"], capture_output=True, text=True, check=True
            ).stdout
        assert "runs-exited-0" in screen, screen
        whole_cells(screen)
    finally:
        subprocess.run([*tmux, "kill-session", "-t", "runs"], capture_output=True)


@pytest.mark.parametrize("columns", [None, 80])
def test_a_heartbeat_dated_ahead_says_how_far_whole(runs_dir: Path, columns: int | None) -> None:
    """A finished run copied with the mtimes of a writer a day ahead: `nsa status` says `heartbeat dated 23h49m ahead
    of this machine's clock`, `nsa runs` said `-`, as of a run without a heartbeat. Its cell says how far, uncut."""
    make_v1_run(runs_dir / "ahead", steps=300, state="finished", now=time.time() + 86400, age_s=600)
    make_v1_run(runs_dir / "here", steps=300, state="finished")
    out = nsa_runs(runs_dir, columns)
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert re.search(r"\b23h(49|50)m ahead +ok\b", rows["ahead"]), out
    assert " ahead " not in rows["here"], out
    assert columns is None or all(len(line.rstrip()) <= columns for line in out.splitlines()), out
