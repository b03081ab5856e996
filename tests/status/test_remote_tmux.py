"""`nsa status --host`: the tmux server asked about a run's session is the remote run's own (launch.json),
never the NSA_TMUX_SOCKET of the machine running `nsa status` (loopback sshd, real tmux servers)."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from fixtures.runs import make_v1_run
from typer.testing import CliRunner

from nsa_tui.cli import app

pytestmark = pytest.mark.slow


def _status(args: list[str]) -> tuple[int, list[dict]]:
    res = CliRunner().invoke(app, ["status", "--json", *args])
    return res.exit_code, [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def _launched_run(tmp_path, launch_extra: dict | None, *, drop_socket_key: bool):
    name = f"r{uuid.uuid4().hex[:8]}"
    run = tmp_path / name
    make_v1_run(run, steps=200, launch=True, name=name)
    launch = json.loads((run / "launch.json").read_text())
    launch.update(launch_extra or {})
    if drop_socket_key:
        launch.pop("tmux_socket", None)
    (run / "launch.json").write_text(json.dumps(launch))  # one line, as other writers may leave it
    return run, launch["tmux_session"]


@pytest.mark.parametrize("with_nsa", [True, False], ids=["remote-nsa", "remote-script"])
def test_local_socket_is_not_used_for_the_remote_run(tmp_path, sshd_factory, monkeypatch, tmux_socket, with_nsa):
    """launch.json without tmux_socket: the remote's default server is asked. Our NSA_TMUX_SOCKET server
    has a session of that name, but it is on this machine's side of the link, so it must not count."""
    s = sshd_factory(with_nsa=with_nsa)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    run, session = _launched_run(tmp_path, None, drop_socket_key=True)
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", session, "sleep 60"], check=True)
    code, objs = _status(["--host", s.host, str(run)])
    assert code == 2 and objs[0]["state"] == "crashed"
    assert objs[0]["alerts"][0]["rule"] == "process_exited"


@pytest.mark.parametrize("with_nsa", [True, False], ids=["remote-nsa", "remote-script"])
def test_recorded_socket_in_one_line_launch_json(tmp_path, sshd_factory, monkeypatch, with_nsa):
    """The recorded socket is found in a compact (one-line) launch.json too; our own env names another
    server with no sessions."""
    s = sshd_factory(with_nsa=with_nsa)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    monkeypatch.setenv("NSA_TMUX_SOCKET", f"nsa-test-empty-{uuid.uuid4().hex[:6]}")
    other = f"nsa-test-rec-{uuid.uuid4().hex[:6]}"
    run, session = _launched_run(tmp_path, {"tmux_socket": other}, drop_socket_key=False)
    subprocess.run(["tmux", "-L", other, "new-session", "-d", "-s", session, "sleep 60"], check=True)
    try:
        code, objs = _status(["--host", s.host, str(run)])
        assert code == 0 and objs[0]["state"] == "running"
    finally:
        subprocess.run(["tmux", "-L", other, "kill-server"], check=False, capture_output=True)
    code, objs = _status(["--host", s.host, str(run)])
    assert code == 2 and objs[0]["state"] == "crashed"
