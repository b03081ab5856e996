"""Our tmux calls, always on the private server named by $NSA_TMUX_SOCKET when it is set.

Targets use ``=name`` so tmux matches the session name exactly (a bare ``-t name``
is a prefix match: ``nsa-a`` would find ``nsa-ab``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from nsa_tui.errors import UserError

TMUX_SOCKET_ENV = "NSA_TMUX_SOCKET"
SESSION_PREFIX = "nsa-"


def session_name(run_name: str) -> str:
    """The tmux session of a run: ``nsa-<name>``; tmux itself turns '.' and ':' into '_'."""
    return SESSION_PREFIX + run_name.replace(".", "_").replace(":", "_")


def tmux_binary() -> str:
    """The tmux executable on PATH, or one clear error."""
    found = shutil.which("tmux")
    if found is None:
        raise UserError("tmux is not installed or not on PATH (apt-get install tmux); nsa launch runs trainers in tmux")
    return found


def tmux_argv(*args: str) -> list[str]:
    sock = os.environ.get(TMUX_SOCKET_ENV)
    return [tmux_binary(), *(["-L", sock] if sock else []), *args]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tmux_argv(*args), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)


def has_session(name: str) -> bool:
    return _run("has-session", "-t", f"={name}").returncode == 0


def new_session(name: str, argv: list[str], cwd: Path) -> None:
    """A detached session running ``argv`` directly (tmux execs several arguments
    without a shell, so nothing in them is ever parsed as shell syntax)."""
    res = _run("new-session", "-d", "-s", name, "-c", str(cwd), "-x", "200", "-y", "50", "--", *argv)
    if res.returncode != 0:
        raise UserError(f"tmux could not start session {name!r}: {res.stderr.strip() or 'unknown error'}")


def kill_session(name: str) -> bool:
    """True when a session was killed."""
    return _run("kill-session", "-t", f"={name}").returncode == 0


def attach_argv(name: str) -> list[str]:
    return tmux_argv("attach-session", "-t", f"={name}")
