"""`nsa watch` as a user runs it: in a real tmux pane, read back with capture-pane."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.cli import nsa_on_a_terminal
from fixtures.runs import make_v1_run

NSA = str(Path(sys.executable).parent / "nsa")


def _tmux(sock: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, check=True).stdout


def _screen_until(sock: str, pred, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = _tmux(sock, "capture-pane", "-p", "-t", "watch")
        if pred(text):
            return text
        time.sleep(0.2)
    raise AssertionError(f"screen never matched; last screen:\n{text}")


@pytest.mark.slow
def test_nsa_watch_in_a_tmux_pane(tmux_socket, runs_dir):
    w = make_v1_run(runs_dir / "tiny-cpu", steps=300, state="running", log_every=10)
    env = f"NSA_RUNS_DIR={shlex.quote(str(runs_dir))} NSA_TMUX_SOCKET={shlex.quote(tmux_socket)}"
    # -u COLUMNS/LINES: the test process exports 80x24, which would override the pane's size
    cmd = f"env -u COLUMNS -u LINES {env} {NSA} watch; sleep 30"
    _tmux(tmux_socket, "new-session", "-d", "-s", "watch", "-x", "120", "-y", "40", cmd)
    try:
        screen = _screen_until(tmux_socket, lambda s: "step 300/" in s and "loss" in s and "q quit" in s)
        assert "tiny-cpu" in screen  # the most recent run, by default
        assert "health" in screen and "events" in screen and "q quit" in screen
        assert "⣿" in screen or "⠒" in screen or "⣀" in screen  # braille charts drawn
        w.progress(3)
        _screen_until(tmux_socket, lambda s: "step 330/" in s, timeout=5)
        _tmux(tmux_socket, "send-keys", "-t", "watch", "?")
        _screen_until(tmux_socket, lambda s: "re-read every file from scratch" in s, timeout=5)
        _tmux(tmux_socket, "send-keys", "-t", "watch", "Escape")
        _screen_until(tmux_socket, lambda s: "re-read every file from scratch" not in s, timeout=5)
        assert "r re-read" in screen and "→ next" not in screen  # every key of one run fits; no run to switch to
        _tmux(tmux_socket, "send-keys", "-t", "watch", "q")
        # after q the shell runs `sleep`: the dashboard is gone from the pane
        _screen_until(tmux_socket, lambda s: "q quit" not in s, timeout=5)
    finally:
        subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", "watch"], capture_output=True)


def test_ctrl_c_quits_like_tail_f(tmux_socket, runs_dir):
    """Habit from `tail -f`: Textual's default answer to ctrl+c was a toast saying to press ctrl+q."""
    make_v1_run(runs_dir / "r", steps=100, state="running")
    env = f"NSA_RUNS_DIR={shlex.quote(str(runs_dir))} NSA_TMUX_SOCKET={shlex.quote(tmux_socket)}"
    cmd = f"env -u COLUMNS -u LINES {env} {NSA} watch; echo watch-exited-$?; sleep 30"
    _tmux(tmux_socket, "new-session", "-d", "-s", "watch", "-x", "120", "-y", "40", cmd)
    try:
        _screen_until(tmux_socket, lambda s: "step 100/" in s and "q quit" in s)
        _tmux(tmux_socket, "send-keys", "-t", "watch", "C-c")
        _screen_until(tmux_socket, lambda s: "watch-exited-0" in s, timeout=5)
    finally:
        subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", "watch"], capture_output=True)


def test_unknown_run_is_one_clear_error(runs_dir):
    proc = nsa_on_a_terminal("watch", "no-such-run", timeout=30)
    assert proc.returncode == 3
    assert proc.stderr.startswith("error: no run directory 'no-such-run'") and "Traceback" not in proc.stderr


NO_TERMINAL = (
    "error: nsa watch needs a terminal (run from a script or a pipe here): type it in an interactive shell, or use "
    "`nsa status` (--json for scripts) or `nsa runs`\n"
)


def test_without_a_terminal_that_is_the_error_before_runs_or_ssh(tmp_path, monkeypatch):
    """README: without a terminal `nsa watch` is one error pointing at `nsa status` and `nsa runs`, exit 1. It looked
    for the runs first (exit 3, `no runs under ...`, in an empty directory) and, with --host, tried ssh first."""
    monkeypatch.delenv("NSA_RUNS_DIR", raising=False)
    tried = tmp_path / "ssh-tried"
    fake_ssh = tmp_path / "ssh"
    fake_ssh.write_text(f"#!/bin/sh\ntouch {shlex.quote(str(tried))}\nexit 255\n")
    fake_ssh.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "NSA_SSH_COMMAND": str(fake_ssh)}
    for args in ([], ["x", "--host", "nonexistent.invalid"]):
        proc = subprocess.run([NSA, "watch", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=30)  # fmt: skip
        assert (proc.returncode, proc.stderr, proc.stdout) == (1, NO_TERMINAL, ""), (args, proc.stderr)
    assert not tried.exists()  # no ssh started
    # a mistake in the options is still said first (from a script too): no terminal would not be its fix
    proc = subprocess.run([NSA, "watch", "--host", "", "x"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=30)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith("error: invalid host ''"), proc.stderr


def test_bad_host_is_one_clear_error(runs_dir):
    proc = subprocess.run([NSA, "watch", "--host", "-oProxyCommand=x", "r"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stderr.startswith("error: invalid host")  # as status, runs, report


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--interval", "5", "r"], "error: --interval is for --host"),
        (["--host", "gpu", "--poll", "r"], "error: --poll is for local runs"),
    ],
    ids=["interval-without-host", "poll-with-host"],
)
def test_an_option_for_the_other_kind_of_run_is_an_error_not_ignored(runs_dir, args, says):
    make_v1_run(runs_dir / "r", steps=20)
    proc = subprocess.run([NSA, "watch", *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stderr.startswith(says) and proc.stderr.count("\n") == 1  # usage


def test_cli_does_not_import_textual_or_torch():
    code = "import sys, nsa_tui.cli; print('textual' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
