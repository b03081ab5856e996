"""Run names and tmux sessions on a real tmux server: one name, one session, found again as recorded."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from nsa_tui.launch import tmux

from .helpers import TINY, nsa, tmux_sessions, wait_for

NAMES = ["h#{pane_id}", "a.b", "a_b", "a:b", "x\\y", "a$HOME", "é", "p%2Eq", "semi;", "#S", "it's $(id)"]


def test_each_name_gets_its_own_session_that_tmux_keeps(tmux_socket, tmp_path):
    """tmux expanded '#' in `new-session -s` ('h#{pane_id}' became 'nsa-h', so status called the live run crashed)
    and mapped `a.b` onto `a_b`'s session; an argument ending in ';' was read as a command separator."""
    for name in NAMES:
        tmux.new_session(tmux.session_name(name), ["sleep", "60"], tmp_path)
    assert sorted(tmux_sessions()) == sorted(tmux.session_name(n) for n in NAMES)
    assert all(tmux.has_session(tmux.session_name(n)) for n in NAMES)
    assert tmux.kill_session(tmux.session_name("a.b")) and tmux.has_session(tmux.session_name("a_b"))


def test_a_run_dir_ending_in_a_semicolon_reaches_the_wrapper(tmux_socket, tmp_path):
    run_dir = tmp_path / "r;"
    run_dir.mkdir()
    out = tmp_path / "argv.json"
    code = f"import json, sys; json.dump(sys.argv[1:], open({str(out)!r}, 'w'))"
    tmux.new_session("nsa-semi", [sys.executable, "-c", code, str(run_dir), ";"], tmp_path)
    assert wait_for(lambda: out.exists() and json.loads(out.read_text()), 20, "the program's argv") == [
        str(run_dir),
        ";",
    ]


def test_a_name_that_maps_like_a_live_one_is_not_refused(runs_dir, tmux_socket):
    """`a_b` live made `--name a.b` say 'session nsa-a_b exists' (and --force would have killed the other run)."""
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-a_b", "sleep", "300"], check=True)
    res = nsa("launch", "--name", "a.b", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "session: nsa-a%2Eb" in res.stdout and "is taken" not in res.stdout
    res = nsa("launch", "--name", "h#{pane_id}", "--dry-run")
    assert res.returncode == 0 and "session: nsa-h%23{pane_id}" in res.stdout, res.stdout + res.stderr


def test_the_run_dirs_recorded_session_counts_as_occupied(runs_dir, tmux_socket):
    """A run dir whose launch.json names another live session (launched under another mapping or socket)."""
    run = runs_dir / "old.name"
    run.mkdir()
    launch = {"tmux_session": "nsa-old_name", "tmux_socket": tmux_socket, "host": socket.gethostname()}
    (run / "launch.json").write_text(json.dumps(launch))
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-old_name", "sleep", "300"], check=True)
    res = nsa("launch", "--name", "old.name")
    assert res.returncode == 1 and "tmux session nsa-old_name already exists" in res.stderr, res.stderr


def test_a_shell_with_another_tmux_tmpdir_still_finds_the_run(runs_dir, tmp_path, monkeypatch):
    """$TMUX_TMPDIR set where the run was launched and not where it is checked (or set otherwise): the default
    server is then another socket, and the run read as crashed. launch.json records the server's socket path."""
    from nsa_tui.commands.attach import attach_argv_for

    monkeypatch.delenv("NSA_TMUX_SOCKET", raising=False)
    (a := tmp_path / "a").mkdir()
    (b := tmp_path / "b").mkdir()
    res = nsa("launch", "--name", "sock", *TINY, env={**os.environ, "TMUX_TMPDIR": str(a)})
    assert res.returncode == 0, res.stderr
    launch = json.loads((runs_dir / "sock" / "launch.json").read_text())
    path = launch["tmux_socket_path"]
    try:
        assert launch["tmux_socket"] is None and path == str(a.resolve() / f"tmux-{os.getuid()}" / "default")
        other = {**os.environ, "TMUX_TMPDIR": str(b)}
        said = json.loads(nsa("status", "--json", "sock", env=other).stdout)
        assert said["state"] in ("starting", "running") and said["health"] == "ok", said
        monkeypatch.setenv("TMUX_TMPDIR", str(b))
        argv, _ = attach_argv_for("sock")
        assert argv[1:3] == ["-S", path] and argv[-1] == "=nsa-sock"
    finally:
        subprocess.run(["tmux", "-S", path, "kill-server"], capture_output=True)


def test_a_stopped_tmux_server_is_one_error_not_a_traceback(tmux_socket, tmp_path, monkeypatch):
    """has-session on a SIGSTOPped server ran into the 30 s timeout and raised TimeoutExpired out of launch, halt and
    attach."""
    import signal

    import pytest

    from nsa_tui.errors import UserError

    tmux.new_session("nsa-stopped", ["sleep", "60"], tmp_path)
    pid = int(subprocess.run(
        ["tmux", "-L", tmux_socket, "display-message", "-p", "#{pid}"], capture_output=True, text=True, check=True
    ).stdout)  # fmt: skip
    monkeypatch.setattr(tmux, "TMUX_TIMEOUT_S", 1.0)
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(UserError, match=r"tmux did not answer `.*has-session -t =nsa-stopped` within 1s"):
            tmux.has_session("nsa-stopped")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert tmux.has_session("nsa-stopped")
