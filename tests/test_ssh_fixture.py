"""The loopback sshd fixture and the ssh transport: quoting and failure messages."""

from __future__ import annotations

import pytest

from nsa_tui.remote.ssh import SSHError, remote_command, remote_script, run_remote


def test_remote_echo_roundtrip_hostile_args(sshd):
    hostile = ["a b", "it's", 'say "hi"', "x; touch /tmp/pwned_nsa", "$(id)", "`id`", "*", ""]
    res = run_remote(sshd.host, remote_script('for a in "$@"; do printf "%s\\n" "$a"; done', hostile))
    assert res.returncode == 0
    assert res.text.split("\n")[:-1] == hostile


def test_the_fake_host_skips_the_developers_dotfiles(sshd):
    """Its shell reads no ~/.bashrc (which may run pyenv and the like): the PATH is the fixture's, untouched."""
    res = run_remote(sshd.host, 'printf "%s|%s" "$SHLVL" "$PATH"')
    assert res.text == f"2|{sshd.path}"


def test_remote_command_quotes_each_arg():
    assert remote_command(["echo", "$(id)"]) == "echo '$(id)'"


def test_refused_connection_is_one_line(monkeypatch, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("NSA_SSH_COMMAND", f"ssh -F /dev/null -p {port} -o UserKnownHostsFile={tmp_path}/kh")
    with pytest.raises(SSHError, match="connection refused"):
        run_remote("root@127.0.0.1", "true", timeout=20)


def test_failed_auth(sshd, monkeypatch, tmp_path):
    import subprocess

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    monkeypatch.setenv("NSA_SSH_COMMAND", sshd.ssh_command.replace(str(sshd.key), str(other)))
    with pytest.raises(SSHError, match="authentication failed"):
        run_remote(sshd.host, "true", timeout=20)


def test_unknown_host_key(sshd, monkeypatch, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    monkeypatch.setenv("NSA_SSH_COMMAND", sshd.ssh_command.replace(str(sshd.known_hosts), str(empty)))
    with pytest.raises(SSHError, match="host key verification failed"):
        run_remote(sshd.host, "true", timeout=20)


def test_host_starting_with_dash_is_rejected():
    with pytest.raises(SSHError, match="invalid host"):
        run_remote("-oProxyCommand=touch /tmp/x", "true")
