"""The newest run (a command without RUN) and the order of `nsa runs` follow the runs' own writes, not what other
commands create in a run directory (`nsa report RUN` made RUN/report/, a dry-run launch probed the directory with a
temp file: either bumped the directory's mtime, and `nsa status` then showed that older run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from fixtures.runs import make_v1_run

REPO = Path(__file__).resolve().parents[2]


def _nsa(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nsa_tui", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )


def _age(path: Path, t: float) -> None:
    """Every file of the run, and the directory itself, last written at t."""
    for p in [*path.iterdir(), path]:
        os.utime(p, (t, t))


def _order() -> list[str]:
    res = _nsa("runs", "--json")
    assert res.returncode == 0, res.stderr
    return [json.loads(line)["run"] for line in res.stdout.splitlines()]


def _newest() -> str:
    res = _nsa("status", "--json")
    assert res.returncode in (0, 1, 2), res.stderr  # the run's health is the exit code; which run is the point
    return json.loads(res.stdout)["run"]


def test_report_and_dry_run_launch_do_not_make_an_older_run_the_newest(runs_dir: Path, tmux_socket: str) -> None:
    now = time.time()
    make_v1_run(runs_dir / "older", steps=100, state="finished", now=now - 600)
    make_v1_run(runs_dir / "newer", steps=100, state="finished", now=now - 300)
    _age(runs_dir / "older", now - 600)
    _age(runs_dir / "newer", now - 300)
    assert _order() == ["newer", "older"] and _newest() == "newer"

    res = _nsa("report", "older")
    assert res.returncode == 0 and (runs_dir / "older" / "report").is_dir(), res.stderr
    assert _order() == ["newer", "older"] and _newest() == "newer"

    # its preflight writes (and removes) a temp file there; --force, or the dry run refuses the taken run dir
    res = _nsa("launch", "--name", "older", "--dry-run", "--force")
    assert res.returncode == 0, res.stderr
    assert _order() == ["newer", "older"] and _newest() == "newer"

    # a run just launched has nothing but launch.json: it is the newest from then on
    (runs_dir / "just").mkdir()
    (runs_dir / "just" / "launch.json").write_text("{}\n")
    os.utime(runs_dir / "just", (now - 900, now - 900))  # an old directory entry: its launch.json decides
    assert _order()[0] == "just"
