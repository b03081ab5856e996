"""Run directories and files this user may not read, and directories that hold no run: one error line each (exit 3),
never a traceback, and never taken for an empty run or for the newest run.

As root (CI) the commands run with the capabilities that let root read anything dropped (setpriv), on directories
owned by another user; as another user a chmod is enough.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from fixtures.cli import nsa_on_a_terminal
from fixtures.runs import make_v1_run

NSA = Path(sys.executable).parent / "nsa"
NOBODY = 65534


def _lock(path: Path, mode: int) -> None:
    path.chmod(mode)
    if os.geteuid() == 0:
        os.chown(path, NOBODY, -1)


def nsa_unprivileged(*args: str) -> subprocess.CompletedProcess[str]:
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    if args[0] == "watch":  # without a terminal it says it needs one first
        return nsa_on_a_terminal(*args, prefix=prefix)
    return subprocess.run([*prefix, str(NSA), *args], capture_output=True, text=True, timeout=60)


def test_a_directory_that_cannot_be_read_is_one_error_and_the_others_are_judged(runs_dir, monkeypatch):
    """`nsa status`, `nsa runs` and `nsa report` ended in a PermissionError traceback, exit 1 (a warning, to a
    script), for a run directory another user owns (or a lost+found at the top of a runs volume)."""
    make_v1_run(runs_dir / "fin", state="finished", steps=100)
    make_v1_run(runs_dir / "locked", state="finished", steps=100)
    _lock(runs_dir / "locked", 0o700)
    res = nsa_unprivileged("status", "locked")
    assert res.returncode == 3, res.stderr
    assert res.stderr.startswith(f"error: cannot read {runs_dir / 'locked'}: permission denied (drwx------, owner ")
    assert len(res.stderr.splitlines()) == 1 and res.stdout == ""
    res = nsa_unprivileged("status", "--json", "fin", "locked")
    assert res.returncode == 3, res.stderr
    fin, locked = (json.loads(line) for line in res.stdout.splitlines())
    assert fin["state"] == "finished" and locked["exit_code"] == 3 and locked["error"].startswith("cannot read ")
    monkeypatch.delenv("COLUMNS", raising=False)  # into a pipe: the whole row (at 80 columns the reason is cut)
    res = nsa_unprivileged("runs")
    assert res.returncode == 0, res.stderr
    [row] = [line for line in res.stdout.splitlines() if line.startswith("locked")]
    assert row.split()[1] == "unreadable" and "permission denied (drwx------, owner " in row, row
    for command in ("report", "watch", "halt", "sample"):
        res = nsa_unprivileged(command, "locked")
        assert res.returncode == 3 and res.stderr.startswith("error: cannot read "), (command, res.stderr)
    res = nsa_unprivileged("status", "locked/deeper")
    assert res.returncode == 3 and "permission denied on its path" in res.stderr, res.stderr


def test_a_file_that_cannot_be_read_is_said_not_taken_for_missing(runs_dir):
    """run.json and the heartbeat unreadable read as not there: `unreadable_files` empty, nothing said."""
    make_v1_run(runs_dir / "r", state="finished", steps=100)
    for name in ("run.json", "heartbeat_rank0.jsonl"):
        _lock(runs_dir / "r" / name, 0o000)
    res = nsa_unprivileged("status", "--json", "r")
    assert res.returncode == 0, res.stderr
    said = {u["file"]: u["problem"] for u in json.loads(res.stdout)["unreadable_files"]}
    assert said == dict.fromkeys(("run.json", "heartbeat_rank0.jsonl"), "cannot be read (Permission denied)")


def test_the_newest_run_is_a_directory_that_holds_one(runs_dir):
    """A folder made in the runs root after the last run (a report's --out, a lost+found) was "the newest run":
    bare `nsa status` said no telemetry, exit 3, beside finished runs."""
    make_v1_run(runs_dir / "fin", state="finished", steps=100)
    time.sleep(0.02)
    (runs_dir / "cmp-report").mkdir()
    (runs_dir / "secret").mkdir()
    (runs_dir / "secret" / "launch.json").write_text("{}")  # a run, newest of all, that this user cannot read
    _lock(runs_dir / "secret", 0o700)
    res = nsa_unprivileged("status", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["run"] == "fin"
    for d in ("fin", "secret"):
        (runs_dir / d).rename(runs_dir.parent / d)
    res = nsa_unprivileged("status")
    assert res.returncode == 3
    assert res.stderr == (
        f"error: no runs under {runs_dir}/ (its 1 directory holds no run's files): pass a run directory, or start "
        "one with `nsa launch`\n"
    )


def test_halt_of_a_run_this_user_cannot_write_to_is_one_error(runs_dir):
    """Another user's run (or a read-only mount): writing .HALT raised PermissionError, a traceback."""
    d = runs_dir / "theirs"
    d.mkdir()
    rec = {"v": 1, "ts": time.time(), "kind": "progress", "rank": 0, "step": 3, "pid": 1}
    (d / "heartbeat_rank0.jsonl").write_text(json.dumps(rec) + "\n")
    _lock(d, 0o755)
    res = nsa_unprivileged("halt", "theirs", "--wait", "1")
    assert res.returncode == 1, res.stderr
    assert res.stderr == (
        f"error: cannot create {d / '.HALT'} (Permission denied): the run was not asked to stop; as its owner, "
        f"`touch {d / '.HALT'}` does the same\n"
    )
