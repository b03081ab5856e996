"""Our tmux calls, always on the private server named by $NSA_TMUX_SOCKET when it is set, else on tmux's
default server: the one launch.json records (its ``tmux_socket``, null for the default).

Never on the server of the tmux session the caller sits in: inside tmux, $TMUX makes a plain ``tmux`` command
talk to that server, so a run launched there would live where launch.json does not say, and every check from
another shell (status, runs, watch, attach) would find no session and call the live run crashed. Our calls
run without $TMUX (``tmux_env``); only `nsa attach` looks at it, to switch the client it sits in.

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


def tmux_env() -> dict[str, str]:
    """This process's environment without the variables that tie tmux to the caller's own session."""
    return {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}


def tmux_argv(*args: str, socket: str | None = None) -> list[str]:
    """tmux on ``socket`` (a -L name: a run's recorded one), else $NSA_TMUX_SOCKET's server, else the default."""
    sock = socket or os.environ.get(TMUX_SOCKET_ENV)
    return [tmux_binary(), *(["-L", sock] if sock else []), *args]


def _run(*args: str, socket: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tmux_argv(*args, socket=socket),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
        env=tmux_env(),
    )


def has_session(name: str, socket: str | None = None) -> bool:
    return _run("has-session", "-t", f"={name}", socket=socket).returncode == 0


def new_session(name: str, argv: list[str], cwd: Path) -> None:
    """A detached session running ``argv`` directly (tmux execs several arguments
    without a shell, so nothing in them is ever parsed as shell syntax)."""
    res = _run("new-session", "-d", "-s", name, "-c", str(cwd), "-x", "200", "-y", "50", "--", *argv)
    if res.returncode != 0:
        raise UserError(f"tmux could not start session {name!r}: {res.stderr.strip() or 'unknown error'}")


def kill_session(name: str) -> bool:
    """True when a session was killed."""
    return _run("kill-session", "-t", f"={name}").returncode == 0


def attach_argv(name: str, socket: str | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) that put this terminal on session ``name``. Inside a tmux client of the same server:
    switch that client to it (attach-session there would refuse to nest); inside another server's client:
    a nested attach, which tmux allows only without $TMUX; outside tmux: attach."""
    inside = os.environ.get("TMUX", "").split(",")[0]
    if inside:
        res = _run("display-message", "-p", "-t", f"={name}", "#{socket_path}", socket=socket)
        here = res.stdout.strip()
        if res.returncode == 0 and here and os.path.realpath(here) == os.path.realpath(inside):
            return tmux_argv("switch-client", "-t", f"={name}", socket=socket), dict(os.environ)
    return tmux_argv("attach-session", "-t", f"={name}", socket=socket), tmux_env()
