"""Fetch run bundles from a remote host in ONE ssh call (nsa on the remote or not)."""

from __future__ import annotations

import os

from nsa_tui.remote.ssh import remote_script, run_remote
from nsa_tui.runs.bundle import REMOTE_SCRIPT, RemoteAnswer, parse_frames, remote_args
from nsa_tui.runs.load import TMUX_SOCKET_ENV

REMOTE_TIMEOUT_S = 60.0


def fetch_remote(host: str, runs: list[str], *, prefer_nsa: bool = True) -> RemoteAnswer:
    """Bounded tails of each RUN on ``host`` (or its own `nsa status --json` when installed
    and ``prefer_nsa``). A RUN of '' means the most recent run, '@all:DIR' every run in DIR.
    Raises nsa_tui.remote.ssh.SSHError (one line) when the host cannot be reached."""
    args = remote_args(os.environ.get(TMUX_SOCKET_ENV, ""), runs or [""], prefer_nsa)
    result = run_remote(host, remote_script(REMOTE_SCRIPT, args), timeout=REMOTE_TIMEOUT_S)
    return parse_frames(result.stdout, host)
