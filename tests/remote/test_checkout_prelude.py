"""The sh prelude every `--host` command runs first (nsa_tui.remote.checkout.PRELUDE), run by a
real /bin/sh here: --remote-dir with the remote's ~, the checkout's nsa first on PATH, and how a
RUN is found. The same script text goes over ssh (tests/remote/test_remote_dir.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nsa_tui.remote.checkout import PRELUDE, missing_run_message

SHOW = 'dir=$1; shift; enter_dir || { echo "cannot enter $dir"; exit 0; }; pwd; command -v nsa || :; '


def _sh(script: str, *args: str, home: Path, env: dict[str, str] | None = None) -> list[str]:
    base = {"HOME": str(home), "PATH": "/usr/bin:/bin", **(env or {})}
    # started in HOME, as an ssh login is
    out = subprocess.run(
        ["sh", "-c", PRELUDE + script, "sh", *args], capture_output=True, text=True, env=base, cwd=home
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return out.stdout.splitlines()


@pytest.mark.parametrize(
    ("given", "expected"),
    [("~/check out", "check out"), ("~", "."), ("check out", "check out"), ("", ".")],
    ids=["tilde-slash", "tilde", "relative", "login-dir"],
)
def test_remote_dir_is_entered_with_the_remote_home(tmp_path, given, expected):
    (tmp_path / "check out").mkdir()
    assert _sh(SHOW, given, home=tmp_path) == [str((tmp_path / expected).resolve())]


def test_a_quoted_tilde_is_the_remote_home_not_a_literal_directory(tmp_path):
    (tmp_path / "nsa").mkdir()
    assert _sh(SHOW, "~/nsa", home=tmp_path) == [str(tmp_path / "nsa")]
    assert _sh(SHOW, "~/missing", home=tmp_path) == [f"cannot enter {tmp_path}/missing"]
    assert _sh(SHOW, "~other/nsa", home=tmp_path) == ["cannot enter ~other/nsa"]  # no one else's home


def test_the_checkouts_venv_nsa_comes_first(tmp_path):
    checkout = tmp_path / "co"
    (checkout / ".venv" / "bin").mkdir(parents=True)
    nsa = checkout / ".venv" / "bin" / "nsa"
    nsa.write_text("#!/bin/sh\n")
    nsa.chmod(0o755)
    assert _sh(SHOW, str(checkout), home=tmp_path) == [str(checkout), str(nsa)]
    assert _sh(SHOW, str(tmp_path), home=tmp_path) == [str(tmp_path)]  # no venv there: PATH as it was


def test_find_run_looks_at_the_path_then_the_runs_root_then_the_newest(tmp_path):
    (tmp_path / "runs" / "old").mkdir(parents=True)
    (tmp_path / "runs" / "new").mkdir()
    (tmp_path / "runs" / "new" / "launch.json").write_text("{}")
    (tmp_path / "runs" / "b c").mkdir()
    (tmp_path / "runs" / "b c" / "heartbeat_rank1.jsonl").write_text("")  # a later node's run: no rank 0 here
    for name, day in (("old", "2020-01-01"), ("new", "2021-01-01"), ("new/launch.json", "2021-01-01")):
        subprocess.run(["touch", "-d", day, str(tmp_path / "runs" / name)], check=True)
    (tmp_path / "runs" / "a report").mkdir()  # the newest directory, and no run: `nsa report --out runs/...`
    (tmp_path / "own").mkdir()
    find = 'dir=$1; shift; enter_dir; for r in "$@"; do find_run "$r"; echo "${d:-none} $where"; done'
    got = _sh(find, str(tmp_path), "own", "old", "", "nope", home=tmp_path)
    root = f"{tmp_path}/runs"
    assert got == [f"own {root}", f"runs/old {root}", f"runs/b c {root}", f"none {root}"]
    subprocess.run(["touch", "-d", "2020-01-01", str(tmp_path / "runs" / "b c")], check=True)
    assert _sh(find, str(tmp_path), "", home=tmp_path) == [f"runs/new {root}"]
    other = tmp_path / "elsewhere"
    (other / "x").mkdir(parents=True)
    got = _sh(find, str(tmp_path), "x", home=tmp_path, env={"NSA_RUNS_DIR": str(other)})
    assert got == [f"{other}/x {other}"]


def test_missing_run_messages_say_where_they_looked():
    msg = missing_run_message("r1", "gpu", "/home/u", "/home/u/runs")
    assert msg.startswith("no run directory 'r1' on gpu (looked at /home/u/r1 and /home/u/runs/r1;")
    assert "--remote-dir" in msg
    assert missing_run_message("/abs/r", "gpu", "/home/u", "/home/u/runs") == "no run directory '/abs/r' on gpu"
    assert missing_run_message("", "gpu", "/h", "/h/runs").startswith("no runs under /h/runs on gpu")
    assert missing_run_message("@all:", "gpu", "/h", "/h/runs").startswith("no runs directory /h/runs on gpu")
