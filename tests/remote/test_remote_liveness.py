"""Over ssh as here: a run killed without an end record is `crashed` at once, not `running` until its heartbeat
is stale. `nsa watch --host` hears from the host's script whether the run's tmux session (launch.json's server)
or, for a run started without `nsa launch`, a rank's pid is still there; `nsa status --host` without `nsa` on
the host gets the host's live pids in its one call. Against the loopback sshd and a private tmux server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

from fixtures.cli import invoke
from fixtures.runs import make_v1_run
from watch.test_liveness_and_unreadable import a_dead_pid, model_verdict, this_hosts_run

from nsa_train.telemetry import schema
from nsa_tui.runs.load import tmux_session_name
from nsa_tui.tail.remote import RemoteRunSource
from nsa_tui.watch.model import TMUX_EVERY_S, RunModel


def _remote_model(host: str, run: Path) -> RunModel:
    return RunModel(run.name, RemoteRunSource(host, str(run), interval=0.2), check_liveness=True)


def _pump_until(models: list[RunModel], said, timeout: float = 20.0) -> float:
    """Pump (a fake clock a liveness period apart) until ``said(model)`` holds for every model; the clock."""
    clock = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        clock += TMUX_EVERY_S + 1
        for m in models:
            m.pump(now=clock)
        if all(said(m) for m in models):
            return clock
        time.sleep(0.2)
    raise AssertionError([m.source.describe() for m in models])


def test_status_over_ssh_without_nsa_there_judges_a_run_by_its_pids(tmp_path, sshd_factory, monkeypatch):
    s = sshd_factory(with_nsa=False)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    this_hosts_run(tmp_path / "alive", os.getpid())
    this_hosts_run(tmp_path / "dead", a_dead_pid())
    for name, state in (("alive", "running"), ("dead", "crashed")):
        local = invoke("status", "--json", str(tmp_path / name))
        remote = invoke("status", "--json", "--host", s.host, str(tmp_path / name))
        got = json.loads(remote.stdout)
        assert got["state"] == json.loads(local.stdout)["state"] == state, remote.stderr
        assert remote.exit_code == local.exit_code
    # a run of another machine (its boot record's host, and run.json's): its pids say nothing here
    _move_to(tmp_path / "dead", "elsewhere")
    remote = invoke("status", "--json", "--host", s.host, str(tmp_path / "dead"))
    assert json.loads(remote.stdout)["state"] == "running"


def _move_to(run: Path, host: str) -> None:
    """The run's records and run.json (when there) say it ran on ``host``."""
    if (run / schema.RUN_JSON).exists():
        info = json.loads((run / schema.RUN_JSON).read_text())
        (run / schema.RUN_JSON).write_text(json.dumps({**info, "host": host}))
    hb = run / schema.heartbeat_name(0)
    recs = [json.loads(line) for line in hb.read_text().splitlines()]
    hb.write_text("".join(json.dumps({**r, "host": host} if r["kind"] == "boot" else r) + "\n" for r in recs))


def test_status_over_ssh_judges_a_start_killed_before_run_json_by_its_boot_record(tmp_path, sshd_factory, monkeypatch):
    """A start killed before run.json (loading its data, building its model) was `starting` until stuck_at_start's
    900 s: its boot record says the host, the host's pid list says the process is gone."""
    s = sshd_factory(with_nsa=False)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    for name, pid in (("alive", os.getpid()), ("dead", a_dead_pid())):
        w = make_v1_run(tmp_path / name, state="starting", run_info={"host": socket.gethostname()})
        w.pid, w.ts = pid, time.time()  # its last record written since the process started (not a reused pid)
        w.phase("model")
        (tmp_path / name / schema.RUN_JSON).unlink()
    for name, state in (("alive", "starting"), ("dead", "crashed")):
        local = invoke("status", "--json", str(tmp_path / name))
        remote = invoke("status", "--json", "--host", s.host, str(tmp_path / name))
        assert json.loads(remote.stdout)["state"] == json.loads(local.stdout)["state"] == state, remote.stderr
        assert remote.exit_code == local.exit_code
    _move_to(tmp_path / "dead", "elsewhere")  # another machine's: nothing here can tell
    remote = invoke("status", "--json", "--host", s.host, str(tmp_path / "dead"))
    assert json.loads(remote.stdout)["state"] == "starting"


def test_watch_over_ssh_judges_a_run_by_its_pids(tmp_path, sshd):
    this_hosts_run(tmp_path / "alive", os.getpid())
    this_hosts_run(tmp_path / "dead", a_dead_pid())
    models = [_remote_model(sshd.host, tmp_path / n) for n in ("alive", "dead")]
    try:
        clock = _pump_until(models, lambda m: m.source.live_pids is not None and m.history.ranks)
        for m in models:
            m.pump(now=clock + TMUX_EVERY_S + 1)
        states = [model_verdict(m, time.time()).state for m in models]
    finally:
        for m in models:
            m.source.close()
    assert states == ["running", "crashed"]


def test_watch_over_ssh_asks_the_tmux_server_launch_json_names(tmp_path, sshd, tmux_socket):
    run = tmp_path / "r"
    make_v1_run(run, steps=200, now=time.time(), launch=True)
    launch = {**json.loads((run / schema.LAUNCH_JSON).read_text()), "tmux_socket": tmux_socket}
    (run / schema.LAUNCH_JSON).write_text(json.dumps(launch))
    session = tmux_session_name(launch, run.name)
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", session, "sleep 600"], check=True)
    m = _remote_model(sshd.host, run)
    try:
        _pump_until([m], lambda m: m.source.tmux_sessions is not None and schema.LAUNCH_JSON in m._whole)
        m.pump(now=1e6)
        assert model_verdict(m, time.time()).state == "running"
        subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", f"={session}"], check=True)
        # the server ends with its last session: the host then lists none
        _pump_until([m], lambda m: m.source.tmux_sessions is not None and session not in m.source.tmux_sessions)
        m.pump(now=2e6)
        v = model_verdict(m, time.time())
    finally:
        m.source.close()
    assert (v.state, [a.rule for a in v.alerts]) == ("crashed", ["process_exited"])


def _run_on_a_socket_path(tmp_path: Path) -> tuple[Path, str]:
    """A launched run whose launch.json records its tmux server by absolute path only (a server under a
    $TMUX_TMPDIR the checking shell does not have), its session alive there: (run, socket path)."""
    run = tmp_path / "r"
    make_v1_run(run, steps=200, now=time.time(), launch=True)
    sock_dir = tmp_path / "tmuxdir"
    sock_dir.mkdir()
    path = str(sock_dir / "srv")
    launch = {**json.loads((run / schema.LAUNCH_JSON).read_text()), "tmux_socket": None, "tmux_socket_path": path}
    (run / schema.LAUNCH_JSON).write_text(json.dumps(launch))
    session = tmux_session_name(launch, run.name)
    subprocess.run(["tmux", "-S", path, "new-session", "-d", "-s", session, "sleep 600"], check=True)
    return run, path


def test_status_and_watch_over_ssh_find_the_session_by_its_socket_path(tmp_path, sshd_factory, monkeypatch):
    """A run launched where $TMUX_TMPDIR is set (a .bashrc line) and checked over ssh, whose commands run without
    the interactive .bashrc: the default server there has no such session, the recorded socket path has."""
    run, path = _run_on_a_socket_path(tmp_path)
    try:
        for with_nsa in (True, False):
            s = sshd_factory(with_nsa=with_nsa)
            monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
            remote = invoke("status", "--json", "--host", s.host, str(run))
            assert json.loads(remote.stdout)["state"] == "running", (with_nsa, remote.stdout, remote.stderr)
        m = _remote_model(s.host, run)
        try:
            _pump_until([m], lambda m: m.source.tmux_sessions is not None and schema.LAUNCH_JSON in m._whole)
            m.pump(now=1e6)
            assert model_verdict(m, time.time()).state == "running"
        finally:
            m.source.close()
        assert json.loads(invoke("status", "--json", str(run)).stdout)["state"] == "running"  # and here
    finally:
        subprocess.run(["tmux", "-S", path, "kill-server"], capture_output=True)
    remote = invoke("status", "--json", "--host", s.host, str(run))
    assert json.loads(remote.stdout)["state"] == "crashed"
