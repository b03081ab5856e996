"""Over ssh as here: a run killed without an end record is `crashed` at once, not `running` until its heartbeat
is stale. `nsa watch --host` hears from the host's script whether the run's tmux session (launch.json's server)
or, for a run started without `nsa launch`, a rank's pid is still there; `nsa status --host` without `nsa` on
the host gets the host's live pids in its one call. Against the loopback sshd and a private tmux server."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fixtures.cli import invoke
from fixtures.runs import make_v1_run
from fixtures.shells import SHELLS, posix_shell
from fixtures.torchrun import rank_argv, stop, stopped_said
from fixtures.tracer import traced
from watch.test_liveness_and_unreadable import a_dead_pid, model_verdict, this_hosts_run

from nsa_train.telemetry import schema
from nsa_tui.health.engine import JUDGE_VERSION
from nsa_tui.remote.liveness import LIVENESS_SH, parse_pids, parse_stopped
from nsa_tui.runs.load import tmux_session_name
from nsa_tui.stopped_ranks import Stop, StoppedRank
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


def test_status_over_ssh_without_nsa_there_names_a_stopped_rank(tmp_path, sshd_factory, monkeypatch):
    """`nsa status --host` judged here from the files (no nsa on the host, or an older one, or `--rules`) said
    nothing of a rank stopped with SIGSTOP: the host's pid listing marks stopped processes, and rank_stopped judges
    them as a local `nsa status` does."""
    s = sshd_factory(with_nsa=False)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    run = tmp_path / "paused"
    rank = subprocess.Popen(rank_argv(run))  # this run's trainer by its command line, as a local status checks
    rules = tmp_path / "rules.yaml"
    rules.write_text("rank_stopped: {for: 0}\n")  # at once (the default 60 s is tests/status/test_rank_stopped.py's)
    said = stopped_said(0, rank.pid)
    try:
        this_hosts_run(run, rank.pid)
        rank.send_signal(signal.SIGSTOP)
        for where in ((), ("--host", s.host)):
            res = invoke("status", "--json", "--rules", str(rules), *where, str(run))
            v = json.loads(res.stdout)
            assert (res.exit_code, v["state"], v.get("via")) == (2, "stalled", "ssh" if where else None), res.stderr
            # over --host the pid is the host's: `kill -CONT` through ssh, as the other --host hints say it
            want = stopped_said(0, rank.pid, s.host if where else None)
            assert [(a["rule"], a["message"]) for a in v["alerts"]] == [("rank_stopped", want)], v["alerts"]
        rank.send_signal(signal.SIGCONT)
        res = invoke("status", "--json", "--rules", str(rules), "--host", s.host, str(run))
        assert res.exit_code == 0 and json.loads(res.stdout)["alerts"] == [], res.stdout

        # held by a tracer (as gdb holds it): not sent to `kill -CONT`, which does not end a tracing stop; the host's
        # listing names the tracer, as /proc does here
        with traced(rank.pid) as tracer:
            said = (
                f"rank 0 (pid {rank.pid}, traced by pid {tracer}) is stopped by a debugger or tracer (gdb, strace, "
                "py-spy): `kill -CONT` does not resume it; the tracer must let it go (detach, or continue in the "
                "debugger)"
            )
            for where in ((), ("--host", s.host)):
                res = invoke("status", "--json", "--rules", str(rules), *where, str(run))
                v = json.loads(res.stdout)
                assert (res.exit_code, v["state"]) == (2, "stalled"), (where, res.stderr)
                assert [(a["rule"], a["message"]) for a in v["alerts"]] == [("rank_stopped", said)], v["alerts"]
    finally:
        rank.send_signal(signal.SIGCONT)
        rank.kill()
        rank.wait()


def test_a_hosts_nsa_before_the_tracer_words_is_judged_here(tmp_path, sshd_factory, monkeypatch):
    """A host's nsa of judge version 4 tells a rank a debugger holds to `kill -CONT`: its verdicts are not taken (this
    engine's is newer), and the run is judged here from the files and the host's pid listing, which marks the tracer."""
    from status.test_ssh import _remote_nsa_wrapper

    real = shlex.quote(str(Path(sys.executable).parent / "nsa"))
    # the real nsa's verdicts as a version 4 one says them
    old = r"""sed -e 's/"judge_version": [0-9]*/"judge_version": 4/' -e 's/, traced by pid [0-9]*) is stopped by a """
    old += r"""debugger[^"]*/) is stopped (SIGSTOP, ctrl-z)/'"""
    bin_dir, _ = _remote_nsa_wrapper(tmp_path, f'{real} "$@" | {old}')
    s = sshd_factory(with_nsa=False, path_prefix=bin_dir)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    run = tmp_path / "debugged"
    rank = subprocess.Popen(rank_argv(run))
    try:
        this_hosts_run(run, rank.pid)
        with traced(rank.pid) as tracer:
            res = invoke("status", "--json", "--host", s.host, str(run))
        v = json.loads(res.stdout)
        said_older = f"is older than this one (judge version 4, this one's {JUDGE_VERSION})"
        assert v["via"] == "ssh" and said_older in res.stderr, v
        [(rule, said)] = [(p["rule"], p["message"]) for p in v["pending"]]  # inside the default 60 s
        assert rule == "rank_stopped" and said.startswith(f"rank 0 (pid {rank.pid}, traced by pid {tracer}) is "), said
    finally:
        rank.kill()
        rank.wait()


def test_a_hosts_own_nsa_and_dump_there_say_ssh_host_kill_cont(tmp_path, sshd, monkeypatch):
    """Over --host the host's nsa said ``kill -CONT 20446` resumes` of a pid on that host, typed here it signals a
    pid of this machine; the other --host hints carry `ssh HOST`. And `nsa dump --host` of the stopped rank says so at
    once, not after its 15 s wait."""
    run = tmp_path / "paused"
    rank = subprocess.Popen(rank_argv(run))
    try:
        this_hosts_run(run, rank.pid)
        stop(rank.pid)
        said = stopped_said(0, rank.pid, sshd.host)
        res = invoke("status", "--json", "--host", sshd.host, str(run))
        v = json.loads(res.stdout)
        assert v["via"] == "remote-nsa", res.stderr
        assert [(p["rule"], p["message"]) for p in v["pending"]] == [("rank_stopped", said)], v  # inside the 60 s
        t0 = time.monotonic()
        res = subprocess.run(
            [str(Path(sys.executable).parent / "nsa"), "dump", "--host", sshd.host, str(run)],
            capture_output=True, text=True, timeout=60, env=sshd.env(),
        )  # fmt: skip
        assert time.monotonic() - t0 < 10 and res.returncode == 1, res.stderr
        assert res.stderr.strip() == f"error: on {sshd.host}: no rank of run 'paused' can write its stacks: {said}"
    finally:
        rank.send_signal(signal.SIGCONT)
        rank.kill()
        rank.wait()


def _reused_pid_run(path: Path, pid: int) -> None:
    """A run of this machine whose records name ``pid``, written a minute before the process holding it now started
    (a killed run's pid taken since by another process: pids are reused, soon after a reboot)."""
    w = make_v1_run(path, steps=200, now=time.time() - 60, run_info={"host": socket.gethostname()})
    w.pid, w.ts = pid, time.time() - 60
    w.progress(1)


def test_status_and_runs_over_ssh_tell_a_reused_pid_from_the_run(tmp_path, sshd_factory, monkeypatch):
    """`nsa status --host` said `running OK` where a local `nsa status` said `crashed`: the host's script only listed
    which pids exist. Now it lists their starts too, and the same rule (started_after) judges both."""
    s = sshd_factory(with_nsa=False)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    later = subprocess.Popen(["sleep", "60"])
    try:
        _reused_pid_run(tmp_path / "runs" / "reused", later.pid)
        this_hosts_run(tmp_path / "runs" / "alive", os.getpid())  # records written since this process started
        for name, state in (("reused", "crashed"), ("alive", "running")):
            local = invoke("status", "--json", str(tmp_path / "runs" / name))
            remote = invoke("status", "--json", "--host", s.host, str(tmp_path / "runs" / name))
            assert json.loads(remote.stdout)["state"] == json.loads(local.stdout)["state"] == state, remote.stderr
            assert remote.exit_code == local.exit_code
        listed = invoke("runs", "--json", "--host", s.host, str(tmp_path / "runs"))
        states = {r["run"]: r["state"] for r in map(json.loads, listed.stdout.splitlines())}
        assert states == {"reused": "crashed", "alive": "running"}, listed.stderr
    finally:
        later.kill()
        later.wait()


def test_watch_over_ssh_tells_a_reused_pid_from_the_run(tmp_path, sshd):
    later = subprocess.Popen(["sleep", "60"])
    _reused_pid_run(tmp_path / "reused", later.pid)
    this_hosts_run(tmp_path / "alive", os.getpid())
    try:
        states = _states_over_ssh(sshd.host, [tmp_path / n for n in ("reused", "alive")])
    finally:
        later.kill()
        later.wait()
    assert states == ["crashed", "running"]


def test_watch_over_ssh_names_a_stopped_rank_as_status_does(tmp_path, sshd):
    """The host's pid listing marks a stopped process: `nsa watch --host` judges rank_stopped with it (here inside its
    default 60 s: pending, naming the pid), and a rank continued is no longer said."""
    run = tmp_path / "paused"
    rank = subprocess.Popen(rank_argv(run))
    m = _remote_model(sshd.host, run)
    try:
        this_hosts_run(run, rank.pid)
        rank.send_signal(signal.SIGSTOP)
        stopped = [StoppedRank(0, rank.pid, Stop(), sshd.host)]
        _pump_until([m], lambda m: bool(m.history.ranks) and m.history.stopped_ranks == stopped)
        said = stopped_said(0, rank.pid, sshd.host)
        assert [(p.rule, p.message) for p in model_verdict(m, time.time()).pending] == [("rank_stopped", said)]
        rank.send_signal(signal.SIGCONT)
        _pump_until([m], lambda m: m.history.stopped_ranks == [])
        assert model_verdict(m, time.time()).pending == []
    finally:
        m.source.close()
        rank.send_signal(signal.SIGCONT)
        rank.kill()
        rank.wait()


def test_watch_over_ssh_hears_the_start_of_a_process_new_since_its_last_report(tmp_path, sshd, monkeypatch):
    """After its first report the host's script tells only the starts of processes new since the one before (the
    rest were told: a report costs bytes only for those): a pid taken by a process that started meanwhile comes with
    its start, and the older processes keep theirs."""
    from nsa_train.runtime.control import process_start_time
    from nsa_tui.tail import remote

    # the P frames' tokens, in order, with the thread that parsed each: a source of an earlier test in this worker,
    # still closing, parses its frames through the same patched function
    frames: list[tuple[threading.Thread, list[bytes]]] = []

    def recorded(body: bytes, known: dict[int, float | None]) -> dict[int, float | None]:
        frames.append((threading.current_thread(), body.split()))
        return parse_pids(body, known)

    monkeypatch.setattr(remote, "parse_pids", recorded)
    run = tmp_path / "r"
    this_hosts_run(run, os.getpid())
    src = RemoteRunSource(sshd.host, str(run), interval=0.2)
    later = None
    try:
        deadline = time.monotonic() + 20
        while src.live_pids is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert src.live_pids is not None, src.describe()
        later = subprocess.Popen(["sleep", "60"])
        while (src.live_pids is None or later.pid not in src.live_pids[1]) and time.monotonic() < deadline + 20:
            time.sleep(0.1)
        said = dict(src.live_pids[1]) if src.live_pids else {}
        for pid in (later.pid, os.getpid()):
            start, real = said.get(pid), process_start_time(pid)
            assert start is not None and real is not None and abs(start - real) < 3, (pid, start, real)
        me = str(os.getpid()).encode()
        bodies = [tokens for thread, tokens in frames if thread is src._thread]
        assert any(t.startswith(me + b":") for t in bodies[0]) and me in bodies[-1]  # told once, then the pid alone
    finally:
        src.close()
        if later is not None:
            later.kill()
            later.wait()


@pytest.mark.parametrize("shell", SHELLS)
def test_live_pids_tells_the_starts_of_the_processes_since_a_bound(tmp_path, shell):
    """live_pids SINCE (seconds after boot) tells the start of each process that started then or later, the others'
    not (a watch's host told them in an earlier report): by dash with GNU tools, or busybox alone (no getconf)."""
    from nsa_train.runtime.control import process_start_time

    sh, env = posix_shell(shell, tmp_path)
    since = int(float(Path("/proc/uptime").read_text().split()[0]))
    time.sleep(1.1)  # this process started before ``since``; ``later`` after it
    later = subprocess.Popen(["sleep", "60"])
    try:
        real = {pid: process_start_time(pid) for pid in (os.getpid(), later.pid)}
        said = {}
        for bound in ("", str(since)):
            out = subprocess.run([*sh, "-c", LIVENESS_SH + 'live_pids "$1"', "sh", bound], capture_output=True, env=env)
            assert out.returncode == 0 and out.stderr == b"", out.stderr
            said[bound] = parse_pids(out.stdout)
    finally:
        later.kill()
        later.wait()
    for bound, pids in said.items():
        assert {os.getpid(), later.pid} <= set(pids), bound
        start, want = pids[later.pid], real[later.pid]
        assert start is not None and want is not None and abs(start - want) < 3, (bound, start, want)
    start, want = said[""][os.getpid()], real[os.getpid()]
    assert start is not None and want is not None and abs(start - want) < 3
    assert said[str(since)][os.getpid()] is None  # told before: not again
    assert parse_pids(b"1 2:100 3:x y", {1: 50.0, 3: 7.0}) == {1: 50.0, 2: 100.0}  # the earlier report's start kept


@pytest.mark.parametrize("shell", SHELLS)
def test_live_pids_tells_a_signal_stop_from_a_tracers(tmp_path, shell):
    """A process stopped by SIGSTOP (state T) and one a tracer holds (state t, as under gdb) were both marked /T, and
    rank_stopped told both to `kill -CONT`: the traced one is marked /t with its tracer's pid, by dash and busybox."""
    sh, env = posix_shell(shell, tmp_path)
    stopped, held = subprocess.Popen(["sleep", "60"]), subprocess.Popen(["sleep", "60"])
    try:
        stopped.send_signal(signal.SIGSTOP)
        with traced(held.pid) as tracer:
            out = subprocess.run([*sh, "-c", LIVENESS_SH + "live_pids"], capture_output=True, env=env)
        assert out.returncode == 0 and out.stderr == b"", out.stderr
        marks = parse_stopped(out.stdout)
        assert marks[stopped.pid] == Stop() and marks[held.pid] == Stop(traced=True, tracer=tracer)
        assert os.getpid() not in marks and {stopped.pid, held.pid} <= set(parse_pids(out.stdout))
    finally:
        for p in (stopped, held):
            p.kill()
            p.wait()
    assert parse_stopped(b"1/T 2:100/t 3:100/t77 4/x 5/t7x") == {1: Stop(), 2: Stop(True), 3: Stop(True, 77)}


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
    assert _states_over_ssh(sshd.host, [tmp_path / n for n in ("alive", "dead")]) == ["running", "crashed"]


def _states_over_ssh(host: str, runs: list) -> list[str]:
    """Each run's state as `nsa watch --host` judges it once its pids have come over (one liveness round after)."""
    models = [_remote_model(host, run) for run in runs]
    try:
        clock = _pump_until(models, lambda m: m.source.live_pids is not None and m.history.ranks)
        for m in models:
            m.pump(now=clock + TMUX_EVERY_S + 1)
        return [model_verdict(m, time.time()).state for m in models]
    finally:
        for m in models:
            m.source.close()


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
