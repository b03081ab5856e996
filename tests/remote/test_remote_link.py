"""`nsa halt --host` while the link to the host fails: a frozen host ends the wait, and so does ours for the host.

Against the loopback sshd: its per-connection processes stopped with SIGSTOP answer nothing (a frozen host, or a
link that drops every packet), and the local `nsa` is a real process interrupted as ctrl-c would."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.cli import invoke, one_error
from fixtures.procs import descendants, freeze_sshd_sessions, signal_all

from nsa_tui.remote.ssh import NoticeFilter, session_lost

REPO = Path(__file__).resolve().parents[2]


def _waiting_run(runs_dir: Path) -> Path:
    """A run that is neither ended nor gone: `nsa halt` creates .HALT and waits for its end record."""
    run = runs_dir / "r"
    run.mkdir()
    (run / "heartbeat_rank0.jsonl").write_text(json.dumps({"v": 1, "kind": "progress", "step": 3, "ts": 1.0}) + "\n")
    return run


def _halt(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nsa_tui", "halt", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, cwd=REPO, **kw,
    )  # fmt: skip


def test_halt_over_a_frozen_link_ends_with_lost_the_connection(runs_dir, sshd, monkeypatch):
    """With the host's sshd frozen (SIGSTOP) while `nsa halt --host` waited, it waited until SIGCONT: on a dead TCP
    link, hours. ssh's keepalives (every NSA_SSH_ALIVE_INTERVAL s, 4 unanswered) end it with the one line."""
    monkeypatch.setenv("NSA_SSH_ALIVE_INTERVAL", "1")
    run = _waiting_run(runs_dir)
    proc = _halt("--host", sshd.host, "--wait", "120", "r")
    frozen: list[int] = []
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith("created .HALT; waiting up to 120s"), first
        # the connection's sshd processes, not the host's nsa under them: the host freezes, the run goes on
        frozen = freeze_sshd_sessions(sshd.proc.pid)
        assert frozen
        t0 = time.monotonic()
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("nsa halt --host still waits on a host that answers nothing")
        took = time.monotonic() - t0
    finally:
        proc.kill()
        signal_all(frozen, signal.SIGCONT)
        signal_all(descendants(sshd.proc.pid), signal.SIGKILL)
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    # ssh's own reason ("Timeout, server ... not responding.") is logged at INFO, which the fixture's LogLevel=ERROR
    # keeps back
    assert lines[0].startswith(f"error: lost the connection to {sshd.host} while nsa halt ran there ("), err
    # what the host's halt had done, as an interrupted or timed-out halt says it
    assert lines[0].endswith(
        f"): .HALT stays on {sshd.host}: the run still stops after its current step; check with "
        f"`nsa status --host {sshd.host} r`"
    ), err
    assert took < 30  # 4 keepalives a second apart, with room for a loaded machine
    assert (run / ".HALT").exists()


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("frozen", re.escape("Timeout, server 127.0.0.1 not responding.")),
        # a reboot, a killed sshd: ssh reads the close, or its keepalive meets it first
        ("killed", "(Connection to 127.0.0.1 closed by remote host.|client_loop: send disconnect: Broken pipe)"),
    ],
)
def test_a_link_lost_before_the_hosts_nsa_printed_is_not_cannot_reach(
    runs_dir, sshd_factory, tmp_path, monkeypatch, how, why
):
    """ssh's keepalives start once the session is up: a host that stops answering them was reached, and the command
    may have started there (exit 1, saying so), not "cannot reach HOST" with exit 3 (nothing ran there). The same for
    a session the host ended (its sshd killed)."""
    fake = tmp_path / "slow-bin"
    fake.mkdir()
    started = tmp_path / "started"
    (fake / "nsa").write_text(f"#!/bin/sh\necho $$ >{started}\nexec sleep 120\n")  # an nsa that prints nothing yet
    (fake / "nsa").chmod(0o755)
    s = sshd_factory(with_nsa=False, path_prefix=fake)
    # ssh says why at INFO ("Timeout, server HOST not responding."), which a config file's `LogLevel QUIET` (or
    # ERROR) kept back: ssh then said nothing, and the lost link read "cannot reach" (exit 3). The tools pass
    # LogLevel=INFO, which the command line's -F file does not override
    config = tmp_path / "ssh_config"
    config.write_text("LogLevel QUIET\n")
    command = s.ssh_command.replace(" -o LogLevel=ERROR", "").replace("-F /dev/null", f"-F {config}")
    assert "LogLevel" not in command
    monkeypatch.setenv("NSA_SSH_COMMAND", command)
    monkeypatch.setenv("NSA_SSH_ALIVE_INTERVAL", "1")
    proc = _halt("--host", s.host, "--wait", "120", "r")
    frozen: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while not (started.exists() and started.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), "the host's nsa did not start"
        frozen = freeze_sshd_sessions(s.proc.pid)
        if how == "killed":
            signal_all(frozen, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        signal_all(frozen, signal.SIGCONT)
        signal_all(descendants(s.proc.pid), signal.SIGKILL)
        if started.exists() and (pid := started.read_text().strip()).isdigit():
            signal_all([int(pid)], signal.SIGKILL)  # the fake nsa (its sleep) outlives a session that ended first
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    said = re.escape(f"error: lost the connection to {s.host} while nsa halt ran there (") + why
    said += re.escape(f"): {s.host} had not said it created .HALT: the run may or may not have been asked to stop")
    assert re.match(said, lines[0]), err


def test_a_halt_whose_hosts_nsa_is_stopped_ends_after_its_wait(sshd_factory, tmp_path, monkeypatch):
    """A host's `nsa halt` stopped (SIGSTOP) or stuck, its sshd still answering ssh's keepalives, was waited on
    without end. The wait ends after --wait and the time to connect and start there (NSA_SSH_CONNECT_TIMEOUT +
    NSA_HALT_HOST_GRACE), in one line saying what the host had said it did and how to check."""
    fake = tmp_path / "stopped-bin"
    fake.mkdir()
    started = tmp_path / "started"
    (fake / "nsa").write_text(
        f"#!/bin/sh\necho $$ >{started}\n"
        "echo \"created .HALT; waiting up to 1s for run 'r' to save and stop ...\"\nkill -STOP $$\n"
    )
    (fake / "nsa").chmod(0o755)
    s = sshd_factory(with_nsa=False, path_prefix=fake)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    monkeypatch.setenv("NSA_SSH_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("NSA_HALT_HOST_GRACE", "3")
    t0 = time.monotonic()
    proc = _halt("--host", s.host, "--wait", "1", "r")
    try:
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    except subprocess.TimeoutExpired:
        pytest.fail("nsa halt --host still waits on a host's nsa that is stopped")
    finally:
        proc.kill()
        signal_all(descendants(s.proc.pid), signal.SIGKILL)
        if started.exists() and (pid := started.read_text().strip()).isdigit():
            signal_all([int(pid)], signal.SIGKILL)
    assert out.startswith("created .HALT"), out
    assert proc.returncode == 1, err
    assert err.strip().splitlines() == [
        f"error: nsa halt on {s.host} did not end within 5s (its --wait 1s, and 4s to connect and start there): it is "
        f"stopped or stuck; .HALT stays on {s.host}: the run still stops after its current step; check with "
        f"`nsa status --host {s.host} r`"
    ], err
    assert 5 <= took < 20


def test_logging_at_info_adds_no_known_host_line_to_what_the_tools_say(sshd, tmp_path, monkeypatch):
    """A config that adds every host key (UserKnownHostsFile /dev/null) with `LogLevel ERROR` to keep ssh's
    "Warning: Permanently added ..." back: the LogLevel=INFO the tools pass brought it back, relayed before the host's
    error, and taken for ssh's reason when nothing else was said."""
    config = tmp_path / "ssh_config"
    config.write_text("LogLevel ERROR\nStrictHostKeyChecking no\nUserKnownHostsFile /dev/null\n")
    command = sshd.ssh_command.replace(" -o LogLevel=ERROR", "").replace("-F /dev/null", f"-F {config}")
    command = command.replace(f"-o UserKnownHostsFile={sshd.known_hosts} -o StrictHostKeyChecking=yes", "")
    monkeypatch.setenv("NSA_SSH_COMMAND", command)
    gone = tmp_path / "gone"
    res = invoke("halt", "--host", sshd.host, str(gone))
    assert res.exit_code == 3
    assert one_error(res) == f"error: on {sshd.host}: no run directory '{gone}'"


def test_the_notice_filter_drops_the_known_host_line_and_holds_back_nothing_else() -> None:
    """What `nsa attach --host` relays of ssh's stderr to the terminal, fed in pieces as a pipe gives them."""
    notice = b"Warning: Permanently added '[127.0.0.1]:2222' (ED25519) to the list of known hosts.\r\n"
    said = b"ssh: connect to host gpu port 22: Connection refused\r\n"
    for cut in range(len(notice + said) + 1):  # every split of the stream in two reads
        shown = NoticeFilter()
        data = notice + said
        assert shown.feed(data[:cut]) + shown.feed(data[cut:]) + shown.flush() == said, cut
    shown = NoticeFilter()
    assert shown.feed(b"Enter passphrase for key: ") == b"Enter passphrase for key: "  # a prompt at once
    assert shown.feed(b"\r\nWarning: Perm") == b"\r\n"  # maybe a notice: held
    assert shown.feed(b"ission denied\n") == b"Warning: Permission denied\n"  # not one
    assert shown.feed(b"Warning: Permanently") + shown.flush() == b"Warning: Permanently"  # the end: shown


def test_a_session_lost_is_told_from_a_host_never_reached():
    """By ssh's own lines: those of a session that was up, and those of a host that refused us before one."""
    assert session_lost("Timeout, server gpu not responding.\r\n")
    assert session_lost("Connection to gpu closed by remote host.\r\n")  # a reboot, a killed sshd
    assert session_lost("client_loop: send disconnect: Broken pipe\r\n")  # the same, met by a keepalive first
    assert not session_lost(
        "kex_exchange_identification: Connection closed by remote host\r\nConnection closed by 10.0.0.1 port 22\r\n"
    )
    assert not session_lost("ssh: connect to host gpu port 22: Connection refused\r\n")
    assert not session_lost("")


@pytest.mark.parametrize("value", ["60s", "-1", "nan"])
def test_a_bad_host_grace_is_one_usage_error_before_ssh(monkeypatch, value):
    monkeypatch.setenv("NSA_SSH_COMMAND", "/nonexistent/ssh")  # never run: the setting is refused first
    monkeypatch.setenv("NSA_HALT_HOST_GRACE", value)
    res = invoke("halt", "--host", "gpu", "r")
    assert res.exit_code == 2
    assert one_error(res) == f"error: NSA_HALT_HOST_GRACE={value!r}: expected a number of seconds >= 0, e.g. 60"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize("how", ["ctrl-c", "sigint-to-nsa-alone", "sigkill-to-nsa"])
def test_an_interrupted_halt_over_host_ends_the_hosts_halt_too(runs_dir, sshd, how):
    """ctrl-c on `nsa halt --host RUN` while it waited exited here and left the host's `nsa halt --wait 600` waiting
    there (ssh -T: no SIGHUP for it). Now its end closes ssh's stdin, and the host's nsa ends with it; the line says
    that .HALT stays (the run still stops) and how to check."""
    run = _waiting_run(runs_dir)
    proc = _halt("--host", sshd.host, "--wait", "600", "r", start_new_session=True)
    remote: list[int] = []
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith("created .HALT; waiting up to 600s"), first
        remote = [
            pid for pid in descendants(sshd.proc.pid) if b"halt\0--wait\0" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(remote) == 1, remote  # the host's `nsa halt`
        if how == "ctrl-c":  # a terminal signals its whole foreground group: our nsa and its ssh
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT if how == "sigint-to-nsa-alone" else signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while _alive(remote[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(remote[0]), "the host's nsa halt still waits"
    finally:
        proc.kill()
        signal_all(remote, signal.SIGKILL)
    assert (run / ".HALT").exists()
    if how == "sigkill-to-nsa":
        assert proc.returncode == -signal.SIGKILL
        return
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        f"interrupted: .HALT stays on {sshd.host}: the run still stops after its current step; check with "
        f"`nsa status --host {sshd.host} r`"
    ], err


def test_a_halt_interrupted_before_the_host_created_halt_does_not_say_it_did(runs_dir, sshd_factory, tmp_path):
    fake = tmp_path / "slow-bin"
    fake.mkdir()
    started = tmp_path / "started"
    (fake / "nsa").write_text(f"#!/bin/sh\necho $$ >{started}\nexec sleep 30\n")  # a host's nsa that prints nothing yet
    (fake / "nsa").chmod(0o755)
    s = sshd_factory(with_nsa=False, path_prefix=fake)
    proc = _halt("--host", s.host, "--wait", "600", "r", start_new_session=True, env=s.env())
    try:
        deadline = time.monotonic() + 30
        while not (started.exists() and started.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), "the host's nsa did not start"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        signal_all(descendants(s.proc.pid), signal.SIGKILL)
        if started.exists() and (pid := started.read_text().strip()).isdigit():
            signal_all([int(pid)], signal.SIGKILL)  # the fake nsa (its sleep) outlives a session that ended first
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        f"interrupted: {s.host} had not said it created .HALT: the run may or may not have been asked to stop; "
        f"check with `nsa status --host {s.host} r`"
    ], err


def test_the_hosts_side_hides_the_link_from_its_children_and_ends_with_it(tmp_path):
    """The caller's stdin is the host nsa's alone: its children read /dev/null as before and do not inherit the
    variable (a tmux server started by `nsa launch` would pass it to every later nsa in its panes); its end is a
    KeyboardInterrupt, as ctrl-c there."""
    code = (
        "import os, subprocess, sys, time\n"
        "from nsa_tui.remote.caller import end_with_stdin\n"
        "end_with_stdin()\n"
        'child = \'import os; print(os.environ.get("NSA_END_WITH_STDIN"), os.readlink("/proc/self/fd/0"))\'\n'
        "subprocess.run([sys.executable, '-c', child], check=True)\n"
        "try:\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "NSA_END_WITH_STDIN": "1"},
    )  # fmt: skip
    try:
        assert proc.stdout.readline() == "None /dev/null\n"  # type: ignore[union-attr]
        assert proc.stdout.readline() == "ready\n"  # type: ignore[union-attr]
        t0 = time.monotonic()
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(timeout=20)
        out = proc.stdout.read()  # type: ignore[union-attr]
    finally:
        proc.kill()
    assert out == "interrupted\n" and time.monotonic() - t0 < 10
