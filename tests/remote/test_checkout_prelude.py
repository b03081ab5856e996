"""The sh prelude every `--host` command runs first (nsa_tui.remote.checkout.PRELUDE), run by a
real /bin/sh here: --remote-dir with the remote's ~, the checkout's nsa first on PATH, and how a
RUN is found. The same script text goes over ssh (tests/remote/test_remote_dir.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from fixtures.shells import SHELLS, posix_shell

from nsa_tui.launch import tmux
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


def _find_runs(shell: str, tmp_path: Path, *runs: str, env: dict[str, str], unprivileged: bool = False) -> list[str]:
    """find_run RUN for each of ``runs`` by ``shell`` (fixtures.shells, tmux added to busybox's tools): "d insession
    unread" a line, each '-' when empty. ``unprivileged``: as root without the capabilities that read anything."""
    tools = Path(tempfile.mkdtemp(dir=tmp_path))  # a call's own
    sh, base = posix_shell(shell, tools)
    if shell == "busybox":
        (tools / "bb" / "tmux").symlink_to(shutil.which("tmux") or "tmux")
    prefix = (
        [shutil.which("setpriv") or "setpriv", "--bounding-set=-dac_override,-dac_read_search"] if unprivileged else []
    )
    show = 'for r in "$@"; do find_run "$r"; echo "${d:--} ${insession:--} ${unread:--}"; done'
    res = subprocess.run(
        [*prefix, *sh, "-c", PRELUDE + show, "sh", *runs],
        capture_output=True,
        text=True,
        env={**base, "HOME": str(tmp_path), **env},
        cwd=tmp_path,
    )
    assert res.returncode == 0 and res.stderr == "", res.stderr
    return res.stdout.splitlines()


def _wrapper_session(run: str, run_dir: Path, launch: dict[str, str] | None = None) -> None:
    """A live tmux session of run ``run`` (NSA_TMUX_SOCKET's server) whose pane's command line ends as the launch
    wrapper's, `-m nsa_tui.launch.runner RUN_DIR`, and the launch.json (``launch``) in RUN_DIR."""
    run_dir.mkdir(parents=True)
    session = tmux.session_name(run)
    launch = {"v": 1, "name": run, "tmux_session": session, "argv": ["x"]} if launch is None else launch
    (run_dir / "launch.json").write_text(json.dumps(launch, indent=2))  # as the launcher writes it
    stand_in = [sys.executable, "-c", "import time; time.sleep(60)", "-m", tmux.RUNNER_MODULE, str(run_dir)]
    subprocess.run(tmux.tmux_argv("new-session", "-d", "-s", session, *stand_in), check=True)


@pytest.mark.parametrize("shell", SHELLS)
def test_a_name_found_nowhere_else_is_its_live_tmux_session(tmp_path, tmux_socket, shell):
    """`nsa status NAME` on the host finds a run launched before the index (or with it lost) by its live tmux
    session nsa-NAME; the host's script did not look, and said there was no such run."""
    name = "é.x y"  # percent-encoded in the session's name: nsa-%C3%A9%2Ex y
    _wrapper_session(name, tmp_path / "else" / "r")
    _wrapper_session("other", tmp_path / "o", {"name": "not other", "tmux_session": tmux.session_name("other")})
    env = {"NSA_TMUX_SOCKET": tmux_socket}
    got = _find_runs(shell, tmp_path, name, "other", "é", "sub/" + name, env=env)
    assert got == [f"{tmp_path}/else/r nsa-%C3%A9%2Ex y -", "- - -", "- - -", "- - -"]
    assert _find_runs(shell, tmp_path, name, env={}) == ["- - -"]  # on the default server there is none


@pytest.mark.parametrize("shell", SHELLS)
def test_a_name_found_in_a_directory_that_cannot_be_listed_is_refused(tmp_path, tmux_socket, shell):
    """The index (or a tmux session) names a directory this user cannot list: refused, as a local command refuses
    it (`cannot read DIR: permission denied`), not a run directory the host's readers take for an empty run."""
    locked = tmp_path / "locked" / "r"
    _wrapper_session("live", locked)
    index = tmp_path / ".local" / "state" / "nsa" / "launched.jsonl"
    index.parent.mkdir(parents=True)
    index.write_text(json.dumps({"name": "ix", "run_dir": str(locked), "ts": 1.0}) + "\n")
    env = {"NSA_TMUX_SOCKET": tmux_socket}
    assert _find_runs(shell, tmp_path, "ix", "live", env=env) == [f"{locked} - -", f"{locked} nsa-live -"]
    locked.chmod(0o711)  # searchable by all, not listable: its launch.json is still read
    if os.geteuid() == 0:
        os.chown(locked, 65534, -1)
    got = _find_runs(shell, tmp_path, "ix", "live", env=env, unprivileged=os.geteuid() == 0)
    assert got == [f"- - {locked}", f"- - {locked}"]
