"""`nsa` used from inside a tmux session: runs live on the server launch.json records, not on the caller's.

Found 2026-12-03: `nsa launch` typed in a pane of a tmux server other than the default one started the run on
that server ($TMUX steers a plain `tmux` command) while launch.json said "default server"; from any other shell
`nsa status` then called the live run crashed (critical, "the tmux session is gone"), and `nsa attach` inside
tmux refused to nest. Here the "default" server lives in a private TMUX_TMPDIR, and $TMUX names a second
server, as it does in a pane of that server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from nsa_tui.launch import tmux

from .helpers import TINY, nsa, records, wait_for


class Servers:
    def __init__(self, root: Path) -> None:
        self.dir = root / f"tmux-{os.getuid()}"
        self.default = self.dir / "default"  # where tmux puts its default server under TMUX_TMPDIR
        self.outer = self.dir / "outer"  # the server of the pane the user types in

    def sessions(self, socket: Path) -> list[str]:
        res = subprocess.run(["tmux", "-S", str(socket), "list-sessions", "-F", "#{session_name}"], capture_output=True)
        return res.stdout.decode().split() if res.returncode == 0 else []

    def clients(self, socket: Path) -> list[str]:
        res = subprocess.run(["tmux", "-S", str(socket), "list-clients", "-F", "#{client_tty}"], capture_output=True)
        return res.stdout.decode().split() if res.returncode == 0 else []

    def tmux_inside(self, socket: Path) -> str:
        """$TMUX as tmux sets it in a pane of the server at ``socket``: path,server pid,session index."""
        pid = subprocess.run(
            ["tmux", "-S", str(socket), "display-message", "-p", "#{pid}"], capture_output=True, text=True, check=True
        ).stdout.strip()
        return f"{socket},{pid},0"


@pytest.fixture
def servers(monkeypatch):
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (apt-get install tmux); .ci/run installs it")
    root = Path(tempfile.mkdtemp(prefix="nsa-tt-", dir="/tmp"))  # short: a socket path has ~100 bytes
    monkeypatch.setenv("TMUX_TMPDIR", str(root))
    monkeypatch.delenv("NSA_TMUX_SOCKET", raising=False)
    monkeypatch.delenv("TMUX", raising=False)
    s = Servers(root)
    subprocess.run(["tmux", "-L", "outer", "new-session", "-d", "-s", "work"], check=True)
    yield s
    for sock in (s.default, s.outer):
        subprocess.run(["tmux", "-S", str(sock), "kill-server"], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def test_sessions_and_attach_ignore_the_callers_server(servers, tmp_path, monkeypatch):
    monkeypatch.setenv("TMUX", servers.tmux_inside(servers.outer))
    tmux.new_session("nsa-x", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path)
    assert servers.sessions(servers.default) == ["nsa-x"] and "nsa-x" not in servers.sessions(servers.outer)
    assert tmux.has_session("nsa-x")

    argv, env = tmux.attach_argv("nsa-x")  # from another server's pane: a nested attach, which needs no $TMUX
    assert argv[1:] == ["attach-session", "-t", "=nsa-x"] and "TMUX" not in env

    monkeypatch.setenv("TMUX", servers.tmux_inside(servers.default))
    # from a pane of the run's own server with no client on it (a detached session's script): switch-client said
    # "no current client"; an attach of this terminal instead
    argv, env = tmux.attach_argv("nsa-x")
    assert argv[1:] == ["attach-session", "-t", "=nsa-x"] and "TMUX" not in env
    # with a client on it (a terminal showing that pane): switch this client, never nest
    client = subprocess.Popen(
        ["script", "-qec", f"tmux -S {servers.default} attach-session -t =nsa-x", "/dev/null"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TERM": os.environ.get("TERM") or "xterm-256color"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not servers.clients(servers.default) and time.monotonic() < deadline:
            time.sleep(0.1)
        argv, env = tmux.attach_argv("nsa-x")
        assert argv[1:] == ["switch-client", "-t", "=nsa-x"] and env["TMUX"] == os.environ["TMUX"]
    finally:
        client.kill()
        client.wait()

    monkeypatch.delenv("TMUX")
    argv, env = tmux.attach_argv("nsa-x")
    assert argv[1:] == ["attach-session", "-t", "=nsa-x"] and "TMUX" not in env
    assert tmux.kill_session("nsa-x") and servers.sessions(servers.default) == []


@pytest.mark.slow
def test_a_run_launched_inside_tmux_is_judged_alive_from_anywhere(servers, runs_dir, monkeypatch):
    inside = servers.tmux_inside(servers.outer)
    res = nsa("launch", "--name", "in", *TINY, env={**os.environ, "TMUX": inside})
    assert res.returncode == 0, res.stdout + res.stderr
    run_dir = runs_dir / "in"
    assert json.loads((run_dir / "launch.json").read_text())["tmux_socket"] is None  # the default server...
    assert servers.sessions(servers.default) == ["nsa-in"]  # ...which is where the run is
    wait_for(lambda: any(r.get("kind") == "progress" for r in records(run_dir)), 90, "progress records")
    for env in ({**os.environ}, {**os.environ, "TMUX": inside}):  # a plain shell, and that pane
        verdict = json.loads(nsa("status", "in", "--json", env=env).stdout)
        # alive from both: running, and no liveness alert (a tiny run's own training may raise a warning, e.g.
        # grad_spike, which says nothing about where its tmux session is)
        liveness = {"process_exited", "heartbeat_stale", "stuck_at_start"} & {a["rule"] for a in verdict["alerts"]}
        assert verdict["state"] == "running" and not liveness, verdict
    halt = nsa("halt", "in", "--wait", "120", timeout=180)
    assert halt.returncode == 0 and "reason halt" in halt.stdout, halt.stdout + halt.stderr
