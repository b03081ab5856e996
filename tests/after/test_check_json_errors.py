"""`nsa check --json` with a config that does not load: a script reading the JSON got nothing on stdout. It gets
the {ok, rows} object with the config row failed now; the exit status (2) and the stderr line are as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nsa_tui", "check", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )


def test_a_config_error_with_json_is_the_failed_config_row(tmp_path: Path) -> None:
    res = _check("--json", "--set", "train.stepz=1", "--run-dir", str(tmp_path / "r"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown key 'train.stepz'" in lines[0] and "Traceback" not in res.stderr
    out = json.loads(res.stdout)
    assert out == {
        "ok": False,
        "rows": [{"name": "config", "status": "fail", "reason": lines[0].removeprefix("error: ")}],
    }
    res = _check("--set", "train.stepz=1")  # without --json: the error line only
    assert res.returncode == 2 and res.stdout == ""
