"""Our tmux calls, always on the private server named by $NSA_TMUX_SOCKET when it is set, else on tmux's
default server: the one launch.json records (its ``tmux_socket``, null for the default).

Never on the server of the tmux session the caller sits in: inside tmux, $TMUX makes a plain ``tmux`` command
talk to that server, so a run launched there would live where launch.json does not say, and every check from
another shell (status, runs, watch, attach) would find no session and call the live run crashed. Our calls
run without $TMUX (``tmux_env``); only `nsa attach` looks at it, to switch the client it sits in.

Targets use ``=name`` so tmux matches the session name exactly (a bare ``-t name``
is a prefix match: ``nsa-a`` would find ``nsa-ab``).

A run's socket as launch.json records it: a name (``-L``), or null for tmux's default server, which
``DEFAULT_SERVER`` ("") stands for here; ``None`` (nothing recorded: a new launch) means $NSA_TMUX_SOCKET.
Both name a socket under $TMUX_TMPDIR (else /tmp), which a later shell may not share: a non-interactive ssh
command skips the .bashrc that sets it, and a check there would find no session and call the live run
crashed. So launch.json also records the server's absolute socket path (``tmux_socket_path``, as tmux itself
reports it), and checks address that (``-S``) when it is there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from nsa_train.telemetry import schema
from nsa_tui.errors import UserError

TMUX_SOCKET_ENV = "NSA_TMUX_SOCKET"
SESSION_PREFIX = "nsa-"
DEFAULT_SERVER = ""  # a socket argument meaning tmux's default server, whatever $NSA_TMUX_SOCKET says
SOCKET_PATH_KEY = "tmux_socket_path"  # launch.json: the server's socket as an absolute path

# What tmux keeps as it is in a session name (tried on tmux 3.3): it turns '.' and ':' into '_', expands
# '#' as a format ('h#{pane_id}' became 'h'), escapes backslashes, '$' before a letter and control characters.
# Those, '%' and non-ASCII (whose handling depends on the server's locale) are written as %XX instead: one
# run name, one session, and no two names share one (`a_b` and `a.b` did).
SESSION_ENCODED = "#$%.:\\"  # printable, and still percent-encoded in a session name (the remote script's session_of)
_SESSION_KEEPS = frozenset(chr(c) for c in range(0x20, 0x7F)) - set(SESSION_ENCODED)


def session_name(run_name: str) -> str:
    """The tmux session of a run: ``nsa-<name>``, with what tmux would alter percent-encoded (UTF-8)."""
    out = []
    for ch in run_name:
        if ch in _SESSION_KEEPS:
            out.append(ch)
        else:
            out += [f"%{b:02X}" for b in ch.encode("utf-8", errors="surrogateescape")]
    return SESSION_PREFIX + "".join(out)


def recorded_socket(launch: dict[str, Any] | None) -> str | None:
    """The server a launched run lives on, from its launch.json: its socket's absolute path when recorded, else
    its socket name, DEFAULT_SERVER for null (launched without $NSA_TMUX_SOCKET), None when launch.json has no
    such key (then $NSA_TMUX_SOCKET)."""
    if not isinstance(launch, dict):
        return None
    path = launch.get(SOCKET_PATH_KEY)
    if isinstance(path, str) and path.startswith("/"):
        return path
    if "tmux_socket" not in launch:
        return None
    sock = launch["tmux_socket"]
    return sock if isinstance(sock, str) else DEFAULT_SERVER


def tmux_binary() -> str:
    """The tmux executable on PATH, or one clear error."""
    found = shutil.which("tmux")
    if found is None:
        raise UserError("tmux is not installed or not on PATH (apt-get install tmux); nsa launch runs trainers in tmux")
    return found


def tmux_env() -> dict[str, str]:
    """This process's environment without the variables that tie tmux to the caller's own session."""
    return {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}


def _literal(arg: str) -> str:
    # tmux reads an argument ending in ';' as a command separator ('x;' is 'x' then a new command): '\\;' keeps it
    return arg[:-1] + "\\;" if arg.endswith(";") else arg


def tmux_argv(*args: str, socket: str | None = None) -> list[str]:
    """tmux on ``socket`` (an absolute path: -S; a name: -L; DEFAULT_SERVER: the default server), else (None)
    $NSA_TMUX_SOCKET's server, else the default."""
    sock = os.environ.get(TMUX_SOCKET_ENV) if socket is None else socket
    return [tmux_binary(), *tmux_words(*args, socket=sock)[1:]]


def tmux_words(*args: str, socket: str) -> list[str]:
    """tmux_argv as a user types it (`tmux`, not its path), on ``socket`` ('' the default server) of any machine: this
    one's tmux need not be there."""
    server = (["-S", socket] if socket.startswith("/") else ["-L", socket]) if socket else []
    return ["tmux", *server, *map(_literal, args)]


TMUX_TIMEOUT_S = 30.0


def _run(*args: str, socket: str | None = None) -> subprocess.CompletedProcess[str]:
    """tmux, answered or one error: a stopped or wedged server (SIGSTOP, a full /tmp) made launch, halt and attach
    end in a traceback."""
    argv = tmux_argv(*args, socket=socket)
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=TMUX_TIMEOUT_S, env=tmux_env()
        )
    except subprocess.TimeoutExpired:
        raise UserError(
            f"tmux did not answer `{' '.join(argv[1:])}` within {TMUX_TIMEOUT_S:.0f}s: is its server stopped or stuck? "
            "(`ps -o pid,stat,cmd -C tmux`; a T state is stopped: `kill -CONT PID`)"
        ) from None
    except OSError as e:
        raise UserError(f"cannot run tmux: {e.strerror or e}") from None


def has_session(name: str, socket: str | None = None) -> bool:
    return _run("has-session", "-t", f"={name}", socket=socket).returncode == 0


def new_session(name: str, argv: list[str], cwd: Path) -> str | None:
    """A detached session running ``argv`` directly (tmux execs several arguments
    without a shell, so nothing in them is ever parsed as shell syntax). Returns the server's absolute socket
    path as tmux reports it (None if it reports none)."""
    res = _run(
        "new-session", "-d", "-P", "-F", "#{socket_path}", "-s", name, "-c", str(cwd), "-x", "200", "-y", "50",
        "--", *argv,
    )  # fmt: skip
    if res.returncode != 0:
        raise UserError(f"tmux could not start session {name!r}: {res.stderr.strip() or 'unknown error'}")
    path = res.stdout.strip()
    return path if path.startswith("/") and "\n" not in path else None


def session_pids(name: str, socket: str | None = None) -> list[int]:
    """The pids of the processes session ``name``'s panes run (for a launch: the wrapper); [] when none is known."""
    res = _run("list-panes", "-s", "-t", f"={name}", "-F", "#{pane_pid}", socket=socket)
    if res.returncode != 0:
        return []
    return [int(line) for line in res.stdout.split() if line.isdigit()]


def kill_session(name: str, socket: str | None = None) -> bool:
    """True when a session was killed."""
    return _run("kill-session", "-t", f"={name}", socket=socket).returncode == 0


def attach_argv(name: str, socket: str | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) that put this terminal on session ``name``. Inside a tmux client of the same server:
    switch that client to it (attach-session there would refuse to nest); inside another server's client:
    a nested attach, which tmux allows only without $TMUX; outside tmux: attach."""
    inside = os.environ.get("TMUX", "").split(",")[0]
    if inside:
        res = _run("display-message", "-p", "-t", f"={name}", "#{socket_path}", socket=socket)
        here = res.stdout.strip()
        if res.returncode == 0 and here and os.path.realpath(here) == os.path.realpath(inside) and _has_client():
            return tmux_argv("switch-client", "-t", f"={name}", socket=socket), dict(os.environ)
    return tmux_argv("attach-session", "-t", f"={name}", socket=socket), tmux_env()


def _has_client() -> bool:
    """Whether the caller's tmux pane has a client to switch (one in a detached session, a script's, has none:
    switch-client said "no current client")."""
    try:
        res = subprocess.run(
            ["tmux", "display-message", "-p", "#{client_tty}"],  # the caller's $TMUX picks its server and session
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0 and bool(res.stdout.strip())


RUNNER_MODULE = "nsa_tui.launch.runner"  # the session's program: `python -P -m nsa_tui.launch.runner RUN_DIR`


def session_run_dir(name: str) -> Path | None:
    """The run directory session ``name`` (on $NSA_TMUX_SOCKET's server, else the default) runs the launch wrapper
    for, where it is now: the run directory the wrapper holds open (renamed since it started: it follows, as the
    trainer does), else the one its pane's command line names (/proc: Linux); None when there is no such session,
    tmux, or wrapper."""
    from nsa_tui.launch.dump import process_argv  # here: dump imports the run loading, which a tmux call needs not
    from nsa_tui.launch.open_files import held_directories

    try:
        res = _run("list-panes", "-s", "-t", f"={name}", "-F", "#{pane_pid}")
    except UserError:  # no tmux here, or a stuck server: no session to learn from
        return None
    for pid in (int(p) for p in res.stdout.split() if p.isdigit()) if res.returncode == 0 else ():
        argv = process_argv(pid) or []
        if len(argv) >= 3 and argv[-3:-1] == ["-m", RUNNER_MODULE]:
            held = [d for d in held_directories(pid) if (d / schema.LAUNCH_JSON).is_file()]
            run_dir = held[0] if len(held) == 1 else Path(argv[-1])
            return run_dir if run_dir.is_absolute() else None
    return None
