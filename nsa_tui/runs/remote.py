"""Fetch run bundles from a remote host in ONE ssh call (nsa on the remote or not)."""

from __future__ import annotations

from nsa_tui.remote.ssh import remote_script, run_remote
from nsa_tui.runs.bundle import REMOTE_SCRIPT, RemoteAnswer, parse_frames, remote_args

REMOTE_TIMEOUT_S = 60.0

# Whether a run's tmux session is alive is asked of the tmux server its launch.json names
# ("tmux_socket"; null means tmux's default server). Our own NSA_TMUX_SOCKET names a server on
# this machine, not on the remote, so it is never sent: a launch.json without the key is
# checked on the remote's default server too.
REMOTE_DEFAULT_TMUX_SOCKET = ""


def fetch_remote(host: str, runs: list[str], *, prefer_nsa: bool = True) -> RemoteAnswer:
    """Bounded tails of each RUN on ``host`` (or its own `nsa status --json` when installed
    and ``prefer_nsa``). A RUN of '' means the most recent run, '@all:DIR' every run in DIR.
    Raises nsa_tui.remote.ssh.SSHError (one line) when the host cannot be reached."""
    args = remote_args(REMOTE_DEFAULT_TMUX_SOCKET, runs or [""], prefer_nsa)
    result = run_remote(host, remote_script(REMOTE_SCRIPT, args), timeout=REMOTE_TIMEOUT_S)
    return parse_frames(result.stdout, host)
