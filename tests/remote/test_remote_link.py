"""`nsa halt --host` while the link to the host fails: a frozen host ends the wait, and so does ours for the host.

Against the loopback sshd: its per-connection processes stopped with SIGSTOP answer nothing (a frozen host, or a
link that drops every packet), and the local `nsa` is a real process interrupted as ctrl-c would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> list[int]:
    out = []
    for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split():
        out += [int(child), *_descendants(int(child))]
    return out


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


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
        frozen = [pid for pid in _descendants(sshd.proc.pid) if _comm(pid).startswith("sshd")]
        assert frozen
        _signal_all(frozen, signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("nsa halt --host still waits on a host that answers nothing")
        took = time.monotonic() - t0
    finally:
        proc.kill()
        _signal_all(frozen, signal.SIGCONT)
        _signal_all(_descendants(sshd.proc.pid), signal.SIGKILL)
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    # ssh's own reason ("Timeout, server ... not responding.") is logged at INFO, which the fixture's LogLevel=ERROR
    # keeps back
    assert lines[0].startswith(f"error: lost the connection to {sshd.host} while the command ran there ("), err
    assert "): what it printed above had been done there" in lines[0], err
    assert took < 30  # 4 keepalives a second apart, with room for a loaded machine
    assert (run / ".HALT").exists()


def test_a_link_lost_before_the_hosts_nsa_printed_is_not_cannot_reach(runs_dir, sshd_factory, tmp_path, monkeypatch):
    """ssh's keepalives start once the session is up: a host that stops answering them was reached, and the command
    may have started there (exit 1, saying so), not "cannot reach HOST" with exit 3 (nothing ran there)."""
    fake = tmp_path / "slow-bin"
    fake.mkdir()
    started = tmp_path / "started"
    (fake / "nsa").write_text(f"#!/bin/sh\necho $$ >{started}\nexec sleep 120\n")  # an nsa that prints nothing yet
    (fake / "nsa").chmod(0o755)
    s = sshd_factory(with_nsa=False, path_prefix=fake)
    # ssh says why at INFO ("Timeout, server HOST not responding."), as with a user's default LogLevel
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command.replace("LogLevel=ERROR", "LogLevel=INFO"))
    monkeypatch.setenv("NSA_SSH_ALIVE_INTERVAL", "1")
    proc = _halt("--host", s.host, "--wait", "120", "r")
    frozen: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while not (started.exists() and started.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), "the host's nsa did not start"
        frozen = [pid for pid in _descendants(s.proc.pid) if _comm(pid).startswith("sshd")]
        _signal_all(frozen, signal.SIGSTOP)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        _signal_all(frozen, signal.SIGCONT)
        _signal_all(_descendants(s.proc.pid), signal.SIGKILL)
        if started.exists() and (pid := started.read_text().strip()).isdigit():
            _signal_all([int(pid)], signal.SIGKILL)  # the fake nsa (its sleep) outlives a session that ended first
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(
        f"error: lost the connection to {s.host} while the command ran there (Timeout, server 127.0.0.1 not "
        "responding.): it may have started there"
    ), err
