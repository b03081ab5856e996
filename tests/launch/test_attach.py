"""`nsa attach` through a real pseudo-terminal (util-linux `script`), locally and over SSH."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import pytest
from fixtures.cli import invoke, one_error
from fixtures.procs import descendants, freeze_sshd_sessions, signal_all

from nsa_tui.commands.attach import attach_argv_for
from nsa_tui.launch.tmux import session_name

from .helpers import REPO, nsa


def _attach_and_see(
    nsa_args: list[str], tmux_socket: str, session: str, marker: str, when_seen: Callable[[], None] | None = None
) -> tuple[str, int | None]:
    """Attach in a pty until the pane's marker shows up, then end the session (which ends the attach), or call
    ``when_seen``, which ends it; what the terminal showed and the attach's exit status."""
    subprocess.run(
        ["tmux", "-L", tmux_socket, "new-session", "-d", "-s", session, "sh", "-c", f"echo {marker}; sleep 60"],
        check=True,
    )
    cmd = shlex.join([sys.executable, "-m", "nsa_tui", *nsa_args])
    with tempfile.TemporaryFile() as out:
        # a user's terminal always sets TERM; without one (a bare CI shell) tmux refuses to attach
        env = {**os.environ, "TERM": os.environ.get("TERM") or "xterm-256color"}
        proc = subprocess.Popen(
            ["script", "-qec", cmd, "/dev/null"], stdout=out, stderr=out, stdin=subprocess.PIPE, cwd=REPO, env=env
        )
        seen = b""
        deadline = time.monotonic() + 30
        while marker.encode() not in seen and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            out.seek(0)
            seen = out.read()
        if when_seen is None:
            subprocess.run(["tmux", "-L", tmux_socket, "kill-session", "-t", f"={session}"], capture_output=True)
        else:
            when_seen()
        try:
            proc.wait(timeout=20)
        finally:
            proc.kill()
        out.seek(0)
        return out.read().decode(errors="replace"), proc.returncode


def test_attach_shows_the_session(runs_dir, tmux_socket):
    (runs_dir / "att").mkdir()
    seen, _ = _attach_and_see(["attach", "att"], tmux_socket, "nsa-att", "ATTACHED-MARK-1")
    assert "ATTACHED-MARK-1" in seen, seen


def test_attach_over_ssh_gets_a_terminal(runs_dir, tmux_socket, sshd):
    name = "att $(touch pwned) it's"
    (runs_dir / name).mkdir()
    seen, _ = _attach_and_see(["attach", "--host", sshd.host, name], tmux_socket, session_name(name), "ATTACHED-MARK-2")
    assert "ATTACHED-MARK-2" in seen, seen
    assert not (REPO / "pwned").exists()


def test_attach_over_a_link_that_dies_says_the_connection_was_lost(runs_dir, tmux_socket, sshd, monkeypatch):
    """An attach whose host stopped answering (its sshd frozen: ssh's keepalives go unanswered) said "cannot reach
    HOST" with exit 3, as if the host had never answered. ssh's own line comes first, as before."""
    monkeypatch.setenv("NSA_SSH_COMMAND", sshd.ssh_command.replace("LogLevel=ERROR", "LogLevel=INFO"))
    monkeypatch.setenv("NSA_SSH_ALIVE_INTERVAL", "1")
    (runs_dir / "lost").mkdir()
    frozen: list[int] = []

    def freeze_the_host() -> None:
        frozen.extend(freeze_sshd_sessions(sshd.proc.pid))

    try:
        seen, rc = _attach_and_see(
            ["attach", "--host", sshd.host, "lost"], tmux_socket, "nsa-lost", "ATTACHED-MARK-4", freeze_the_host
        )
    finally:
        signal_all(frozen, signal.SIGCONT)
        signal_all(descendants(sshd.proc.pid), signal.SIGKILL)
    assert frozen
    lines = [line.strip() for line in seen.splitlines()]
    said = [line[line.index("error:") :] for line in lines if "error:" in line]
    assert said == [
        f"error: lost the connection to {sshd.host} while the command ran there (Timeout, server 127.0.0.1 not "
        f"responding.): the run goes on in its tmux session there; attach again with "
        f"`nsa attach --host {sshd.host} -- lost`"
    ], seen
    # ssh's own line, relayed, comes first; "\r\r\n" where ssh's raw-mode "\r\n" met the restored tty's onlcr
    before = [line for line in lines[: lines.index(said[0])] if line]
    assert "Timeout, server 127.0.0.1 not responding." in before[-1], seen
    assert rc == 1


def test_attach_without_a_session_says_so_over_ssh(runs_dir, tmux_socket, sshd):
    (runs_dir / "gone").mkdir()
    (runs_dir / "gone" / "run.json").write_text("{}\n")  # a run whose session is gone
    cmd = shlex.join([sys.executable, "-m", "nsa_tui", "attach", "--host", sshd.host, "gone"])
    res = subprocess.run(
        ["script", "-qec", cmd, "/dev/null"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )
    # the host's nsa writes to the terminal straight (a tty): it says itself where it is and which host the
    # suggested command is for (`nsa status gone`, run here, looked here)
    [said] = [line[line.index("error:") :] for line in res.stdout.splitlines() if "error:" in line]  # after script's ^@
    assert (
        said
        == f"error: on {sshd.host}: no tmux session nsa-gone for run 'gone'; see `nsa status gone --host {sshd.host}`"
    )
    assert res.returncode == 1


def test_a_run_given_as_dot_is_named(runs_dir, tmux_socket, monkeypatch):
    """`nsa attach .` in the run looked for the session `nsa-` and said `for run ''`."""
    run = runs_dir / "fin"
    run.mkdir()
    (run / "run.json").write_text("{}\n")
    monkeypatch.chdir(run)
    res = invoke("attach", ".")
    assert res.exit_code == 1
    assert one_error(res) == "error: no tmux session nsa-fin for run 'fin'; see `nsa status .`"
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-fin", "sleep", "60"], check=True)
    argv, _ = attach_argv_for(".")
    assert argv[-1] == "=nsa-fin"


def test_attach_without_a_terminal_says_so(runs_dir, tmux_socket):
    """From a script or a pipe tmux answered "open terminal failed: not a terminal", naming no session or run."""
    (runs_dir / "att3").mkdir()
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "nsa-att3", "sleep 60"], check=True)
    res = invoke("attach", "att3")  # CliRunner: stdin and stdout are no terminal
    assert res.exit_code == 1
    assert one_error(res) == (
        "error: nsa attach needs a terminal (run from a script or a pipe here): type it in an interactive shell, or "
        "follow the run with `nsa watch att3` or `nsa status att3`"
    )


def test_attach_over_ssh_without_a_terminal_says_so_before_ssh(tmp_path):
    """From a script, `--host` went on with `ssh -t`: "Pseudo-terminal will not be allocated", then the host's tmux
    failed, where a local attach refused in one line. The same refusal, with the commands for that host; the ssh
    command (a stand-in that leaves a mark) never runs."""
    mark = tmp_path / "ssh-ran"
    # sh -c: ssh's options that follow become the script's $0, $1, ... (touch would read them as its own)
    env = {**os.environ, "NSA_SSH_COMMAND": shlex.join(["sh", "-c", f"touch {shlex.quote(str(mark))}"])}
    res = nsa("attach", "--host", "127.0.0.1", "--remote-dir", "/srv/my runs", "x", env=env)  # stdin: /dev/null
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip() == (
        "error: nsa attach needs a terminal (run from a script or a pipe here): type it in an interactive shell, or "
        "follow the run with `nsa watch --host 127.0.0.1 --remote-dir '/srv/my runs' x` or "
        "`nsa status --host 127.0.0.1 --remote-dir '/srv/my runs' x`"
    )
    assert not mark.exists()


def test_attach_over_ssh_keeps_the_known_host_notice_off_the_terminal(runs_dir, tmux_socket, sshd, monkeypatch):
    """Without a LogLevel of the user's, ssh logs at the INFO the tools pass (ssh says a lost link at INFO), and an
    attach to a host whose key ssh adds each time (UserKnownHostsFile /dev/null) printed "Warning: Permanently added
    ... to the list of known hosts." above the tmux client; the other commands drop it from what they relay."""
    command = sshd.ssh_command.replace(" -o LogLevel=ERROR", "")
    command = command.replace(f"-o UserKnownHostsFile={sshd.known_hosts} -o StrictHostKeyChecking=yes", "")
    monkeypatch.setenv("NSA_SSH_COMMAND", f"{command} -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no")
    (runs_dir / "quiet").mkdir()
    seen, rc = _attach_and_see(["attach", "--host", sshd.host, "quiet"], tmux_socket, "nsa-quiet", "ATTACHED-MARK-5")
    assert "ATTACHED-MARK-5" in seen, seen
    assert "Permanently added" not in seen and "known hosts" not in seen, seen
    assert rc == 0, seen


def test_attach_to_a_host_that_refuses_shows_ssh_and_one_error(tmux_socket, sshd, monkeypatch):
    """ssh's own reason still reaches the terminal (only the notice is dropped), then one line, exit 3."""
    port = sshd.port
    with socket.socket() as s:  # a port nothing listens on: bound, never listened on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
        monkeypatch.setenv("NSA_SSH_COMMAND", sshd.ssh_command.replace(f"-p {port}", f"-p {closed}"))
        cmd = shlex.join([sys.executable, "-m", "nsa_tui", "attach", "--host", sshd.host, "r"])
        res = subprocess.run(
            ["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=60, cwd=REPO,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    lines = [line.strip() for line in res.stdout.splitlines() if line.strip()]
    assert any("Connection refused" in line for line in lines), res.stdout
    assert [line[line.index("error:") :] for line in lines if "error:" in line] == [
        f"error: cannot reach {sshd.host} (ssh failed; its message is above)"
    ], res.stdout
    assert res.returncode == 3


@pytest.mark.parametrize("name", ["-dash", "two words"])
def test_the_status_hint_of_a_run_without_a_session_can_be_pasted(runs_dir, tmux_socket, name):
    """`see `nsa status -dash`` ran `-dash` as an option, and `nsa status two words` two runs: quoted, after `--`."""
    (runs_dir / name).mkdir()
    (runs_dir / name / "run.json").write_text("{}\n")
    said = one_error(invoke("attach", "--", name))
    hint = said[said.rindex("see `") + 5 : -1]
    assert shlex.split(hint)[-1] == name and ("--" in shlex.split(hint)) == name.startswith("-"), said


def test_attach_to_a_directory_that_holds_no_run_says_so_as_halt_does(runs_dir, tmux_socket):
    """It said "no tmux session nsa-plain for run 'plain'", as for a run whose session is gone, where `nsa halt`
    said there is no run there (exit 3); the runs root given as a run the same. `nsa dump` said "has no heartbeat
    files yet" (exit 1)."""
    (runs_dir / "plain").mkdir()
    (runs_dir / "real").mkdir()
    (runs_dir / "real" / "run.json").write_text("{}\n")
    for run, where in (("plain", runs_dir / "plain"), (str(runs_dir), runs_dir)):
        attach, halt, dump = invoke("attach", run), invoke("halt", run), invoke("dump", run)
        assert attach.exit_code == halt.exit_code == dump.exit_code == 3
        assert one_error(attach) == one_error(halt).replace("nothing to halt", "nothing to attach")
        assert one_error(dump) == one_error(halt).replace("nothing to halt", "nothing to dump")
        assert one_error(attach).startswith(f"error: no run in {where} (none of run.json, launch.json, ")
    assert one_error(attach).endswith("nothing to attach; it holds run directories: name one of them")
