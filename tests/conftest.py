"""Shared fixtures: real components, not mocks.

- ``sshd``: a real OpenSSH server on 127.0.0.1 (a free port) with throwaway keys,
  and the ``NSA_SSH_COMMAND`` that reaches it. ``sshd_factory(with_nsa=..., path_prefix=...)``
  chooses whether the remote PATH has this venv's ``nsa`` on it, and a directory put first on it.
- ``tmux_socket``: a private tmux server name (``NSA_TMUX_SOCKET``), killed afterwards.
- ``runs_dir``: an empty runs root (``NSA_RUNS_DIR``).

Every test runs without $TMUX/$TMUX_PANE (``outside_any_tmux``): a suite started in a tmux pane must not
reach the developer's own server (a bare `tmux kill-server` in a test would end it, and the suite with it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each xdist worker computes on one thread. With torch's default (a thread per core) in both workers, every
    # parallel region of one waits on a thread the other has taken: a float64 gradcheck of 8 s alone took 30 s,
    # and over 300 s when two coincided. Trainers the tests start set their own threads (runtime.threads).
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def outside_any_tmux(monkeypatch):
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv("TMUX_PANE", raising=False)


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path_factory, monkeypatch) -> Path:
    """Every test's `nsa launch` records its runs in a state directory of its own (nsa_tui.launched), never the
    developer's ~/.local/state/nsa: a name launched by a test would be found by their own commands."""
    state = tmp_path_factory.mktemp("xdg-state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SSHD:
    port: int
    host: str  # the destination to pass as --host
    ssh_command: str  # the value for NSA_SSH_COMMAND
    key: Path
    known_hosts: Path
    proc: subprocess.Popen
    path: str  # the PATH its sessions get

    def env(self) -> dict[str, str]:
        return {**os.environ, "NSA_SSH_COMMAND": self.ssh_command}


def _sshd_on(sshd_bin: str, tmp: Path, port: int, hostkey: Path, auth: Path, path: str) -> subprocess.Popen | None:
    """sshd listening on 127.0.0.1:``port``; None when that port was taken before it bound it."""
    cfg = tmp / "sshd_config"
    cfg.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {hostkey}",
                f"AuthorizedKeysFile {auth}",
                f"PidFile {tmp / 'sshd.pid'}",  # written once it listens
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "UsePAM no",
                "StrictModes no",
                "PrintMotd no",
                # SHLVL=1: bash then counts itself a nested shell and skips ~/.bashrc, which it reads for ssh
                # commands. This machine's root bashrc runs `pyenv init`, whose rehash waits up to 60 s on a
                # lock a killed session can leave behind: every later "remote" command hung (2026-12-03). The
                # fake host is a bare server: the PATH here and nothing from the developer's dotfiles
                # XDG_STATE_HOME: a host's `nsa launch` records its runs under tmp, not in the real home
                f"SetEnv PATH={path} PYTHONUNBUFFERED=1 SHLVL=1 XDG_STATE_HOME={tmp / 'xdg-state'}",
                "MaxStartups 50",
                "MaxSessions 50",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    pidfile = tmp / "sshd.pid"
    pidfile.unlink(missing_ok=True)
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(cfg)], stderr=subprocess.PIPE)
    # its pid file is written once it listens: a connection alone could reach another test's server on the port
    deadline = time.time() + 10
    while time.time() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            if "Address already in use" in err or "Cannot bind any address" in err:
                return None
            pytest.fail(f"sshd did not start: {err}")
        if pidfile.is_file() and pidfile.read_text().strip() == str(proc.pid):
            return proc
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"sshd did not listen on port {port} within 10 s")


def _start_sshd(tmp: Path, *, with_nsa: bool, path_prefix: Path | None = None) -> SSHD:
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd_bin).exists():
        pytest.fail("openssh-server is not installed (apt-get install openssh-server); .ci/run installs it")
    if os.geteuid() != 0:
        pytest.fail("the loopback sshd fixture runs as root (as CI does)")
    tmp.mkdir(parents=True, exist_ok=True)
    hostkey = tmp / "host_ed25519"
    userkey = tmp / "user_ed25519"
    for k in (hostkey, userkey):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k)], check=True)
    auth = tmp / "authorized_keys"
    auth.write_text(userkey.with_suffix(".pub").read_text())
    auth.chmod(0o600)
    path = os.environ.get("PATH", "/usr/bin:/bin")
    if with_nsa:
        path = f"{VENV_BIN}:{path}"
    else:
        # no directory with an `nsa` in it: this venv's, nor another one a developer's shell has activated
        path = ":".join(p for p in path.split(":") if p and not (Path(p) / "nsa").exists()) or "/usr/bin:/bin"
    if path_prefix is not None:  # tools that shadow the system's on the "remote" (e.g. a date that runs ahead)
        path = f"{path_prefix}:{path}"
    Path("/run/sshd").mkdir(exist_ok=True)
    # The free port is free when asked, not when sshd binds it: another test (the suite runs on several xdist
    # workers) may take it in between, as a listener or as a connection's local port. Then another port.
    for _ in range(5):
        port = _free_port()
        proc = _sshd_on(sshd_bin, tmp, port, hostkey, auth, path)
        if proc is not None:
            break
    else:
        pytest.fail("sshd found no free port in 5 tries")
    known = tmp / "known_hosts"
    known.write_text(
        f"[127.0.0.1]:{port} {hostkey.with_suffix('.pub').read_text().split(' ')[0]} "
        f"{hostkey.with_suffix('.pub').read_text().split(' ')[1]}\n"
    )
    ssh_command = (
        f"ssh -F /dev/null -p {port} -i {userkey} -o IdentitiesOnly=yes "
        f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes -o LogLevel=ERROR"
    )
    return SSHD(port, "root@127.0.0.1", ssh_command, userkey, known, proc, path)


@pytest.fixture
def sshd_factory(tmp_path_factory):
    started: list[SSHD] = []

    def make(with_nsa: bool = True, path_prefix: Path | None = None) -> SSHD:
        s = _start_sshd(tmp_path_factory.mktemp("sshd"), with_nsa=with_nsa, path_prefix=path_prefix)
        started.append(s)
        return s

    yield make
    for s in started:
        s.proc.terminate()
        try:
            s.proc.wait(5)
        except subprocess.TimeoutExpired:
            s.proc.kill()


@pytest.fixture
def sshd(sshd_factory, monkeypatch) -> SSHD:
    """A loopback sshd whose PATH has this venv's `nsa`; NSA_SSH_COMMAND is set."""
    s = sshd_factory(with_nsa=True)
    monkeypatch.setenv("NSA_SSH_COMMAND", s.ssh_command)
    return s


@pytest.fixture
def tmux_socket(monkeypatch):
    """A private tmux server for this test (NSA_TMUX_SOCKET); killed at the end."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (apt-get install tmux); .ci/run installs it")
    name = f"nsa-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("NSA_TMUX_SOCKET", name)
    yield name
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True)


@pytest.fixture
def runs_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("NSA_RUNS_DIR", str(root))
    return root


@pytest.fixture
def no_cxx_compiler(monkeypatch) -> str:
    """$CXX naming no program, for the checks that torch.compile on CPU has a C++ compiler. TorchInductor reads
    $CXX once, when its config module is first imported (torch.optim imports it): imported here first, a later
    test's compile in this worker still finds the real compiler."""
    import torch._inductor.config  # noqa: F401

    monkeypatch.setenv("CXX", "no-such-c++")
    return "no-such-c++"
