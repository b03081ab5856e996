"""Run an `nsa` command on another host over the user's OpenSSH.

The remote side is the same `nsa`, so remote runs behave exactly like local ones.
Every argument travels quoted (``remote_script``): a run name such as
``a; rm -rf ~`` or ``$(id)`` reaches the remote `nsa` as one literal argument.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable

from nsa_tui.errors import (
    LINK_LOST_EXIT,
    ON_HOST_ENV,
    ON_REMOTE_DIR_ENV,
    UNREACHABLE_EXIT,
    USAGE_EXIT,
    UserError,
    on_host,
)
from nsa_tui.remote.caller import END_WITH_STDIN_ENV
from nsa_tui.remote.checkout import FORWARDED_ENV, PRELUDE, forwarded_env
from nsa_tui.remote.ssh import (
    SSH_ERROR_EXIT,
    NoticeFilter,
    SSHError,
    check_ssh_program,
    describe_ssh_failure,
    interactive_argv,
    remote_script,
    session_lost,
    ssh_base_command,
    ssh_start_failure,
    validate_host,
    without_notices,
)
from nsa_tui.remote.usage import usage_error, usage_error_line

SSH_FAILED = UNREACHABLE_EXIT  # the same exit status as `nsa status` for an unreachable host
NOT_INSTALLED = 127


# $1 = directory to cd into first ("" for the login directory); the rest is nsa's argv. Its own errors name no
# host: the caller says "on HOST:" as the user named it (uname -n may be another name), or $NSA_ON_HOST does, for
# `nsa attach --host`, whose terminal gets them directly.
# Prefer the checkout's own venv (enter_dir puts it first on PATH), then nsa on PATH.
FIND_AND_RUN_NSA = (
    PRELUDE
    + r"""
dir=$1; shift
on=${NSA_ON_HOST:+on $NSA_ON_HOST: }
if ! enter_dir; then echo "error: ${on}cannot cd to $dir (no such directory there)" >&2; exit 3; fi
if command -v nsa >/dev/null 2>&1; then exec nsa "$@"; fi
where=${dir:+ and no ${dir%/}/.venv/bin/nsa}
echo "error: ${on}nsa is not installed there: not on PATH$where;" \
  "install the project there (pip install -e .) or pass --remote-dir CHECKOUT" >&2
exit 127
"""
)


class NoAnswer(UserError):
    """run_nsa's ``timeout_s`` ran out: the host was reached (ssh's own ConnectTimeout ends one that is not), and
    its nsa did not end in time (stopped, stuck, or slower than that)."""


def nsa_remote_command(
    remote_dir: str | None, nsa_args: list[str], environ: dict[str, str] | None = None, extra: tuple[str, ...] = ()
) -> str:
    """The one remote command line: `[env K=V ...] sh -c SCRIPT sh DIR ARGS...`, all quoted; ``extra``: more
    `K=V` for the host's nsa."""
    env = [*forwarded_env(FORWARDED_ENV, environ), *extra]
    return remote_script(FIND_AND_RUN_NSA, [remote_dir or "", *nsa_args], env)


def run_nsa(
    host: str,
    remote_dir: str | None,
    nsa_args: list[str],
    *,
    echo: bool = True,
    rewrite: Callable[[str], str] | None = None,
    timeout_s: float | None = None,
    env: tuple[str, ...] = (),
) -> tuple[int, str]:
    """Run `nsa ARGS` on host, with ``env`` (``K=V`` items) set for it: (exit status, its stdout). Stdout is echoed
    as it comes (each line through ``rewrite`` when given), stderr relayed when it ends. With
    ``echo=False`` nothing is printed (a dashboard owns the terminal), and when the command
    fails the text returned is its stdout and then its stderr, so the caller can show why.

    Raises UserError (exit SSH_FAILED) when ssh itself fails: connection refused,
    timeout, authentication, host key, an ssh command that cannot run; nothing has run on
    the host then. With ``timeout_s`` (the dashboard's keys), a host that connects and never answers is killed and
    is a UserError after that long, instead of a wait without end.
    """
    check_remote_dir(remote_dir)
    try:
        validate_host(host)
        linked = (f"{END_WITH_STDIN_ENV}=1",)  # the host's nsa ends when ssh's stdin does (remote/caller.py)
        argv = [*ssh_base_command(), host, nsa_remote_command(remote_dir, nsa_args, extra=(*env, *linked))]
    except SSHError as e:
        raise UserError(str(e), SSH_FAILED) from None
    # stderr goes to a file, not a pipe: a chatty remote cannot block us while we read stdout.
    with tempfile.TemporaryFile() as err:
        try:
            # stdin: a pipe we never write to, open while we wait; its end (ours) ends the host's nsa
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        except OSError as e:
            raise UserError(ssh_start_failure(argv[0], e), SSH_FAILED) from None
        timer = threading.Timer(timeout_s, proc.kill) if timeout_s is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            out = _relay_stdout(proc, echo, rewrite)
            rc = proc.wait()
        except KeyboardInterrupt:
            # a terminal's ctrl-c reached ssh too, a SIGINT to us alone did not: the connection ends either way, and
            # with it the host's nsa
            proc.kill()
            proc.wait()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            assert proc.stdin is not None
            proc.stdin.close()
        if timer is not None and timer.finished.is_set() and rc < 0:  # killed by the timer, not by the host
            raise NoAnswer(f"no answer from {host} within {timeout_s:.0f}s (`nsa {nsa_args[0]}` there)", SSH_FAILED)
        err.seek(0)
        stderr = without_notices(err.read().decode("utf-8", errors="replace"))
    if rc == SSH_ERROR_EXIT and (out.strip() or session_lost(stderr)):
        # the host's nsa had started (its output came, or the session was up: ssh's keepalives begin only then, and
        # only a session the host ends is "closed by remote host"): not "cannot reach", and not nothing done.
        # `nsa halt --host` whose link dropped while it waited had created .HALT there, and the run stopped
        done = "what it printed above had been done there" if out.strip() else "it may have started there"
        check = shlex.join(["nsa", "runs", "--host", host, *(["--remote-dir", remote_dir] if remote_dir else [])])
        raise _lost(host, stderr, f"{done}, and the rest may go on without us; check with `{check}`")
    if rc == SSH_ERROR_EXIT:
        raise UserError(describe_ssh_failure(host, stderr), SSH_FAILED)
    if rc == USAGE_EXIT and (said := usage_error(stderr)) is not None:  # its raw box read as this nsa's
        stderr = usage_error_line(said, host)
        if not echo:
            return rc, out + stderr
        sys.stderr.write(stderr)
        sys.stderr.flush()
        return rc, out
    if not echo:
        return rc, out + stderr if rc != 0 else out
    if stderr:
        sys.stderr.write(_on_host(stderr, host, remote_dir))
        sys.stderr.flush()
    return rc, out


class LinkLost(UserError):
    """The connection to a host went after the command began there; ``reason``: ssh's last line."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message, LINK_LOST_EXIT)
        self.reason = reason


def _lost(host: str, stderr: str, then: str) -> LinkLost:
    """The connection to host went after the command began there; ``then``: what that means for it."""
    last = stderr.strip().splitlines()[-1].strip() if stderr.strip() else "ssh exited with status 255"
    return LinkLost(f"lost the connection to {host} while the command ran there ({last}): {then}", last)


def check_remote_dir(remote_dir: str | None) -> None:
    """`--remote-dir ''` would silently mean the login directory."""
    if remote_dir is not None and not remote_dir.strip():
        raise UserError("--remote-dir is empty: give the directory on the host, or leave the option out")


def _on_host(stderr: str, host: str, remote_dir: str | None = None) -> str:
    """The host's `error: ...` lines, as said here (errors.on_host)."""
    return "".join(
        f"error: {on_host(line[len('error: ') :], host, remote_dir)}" if line.startswith("error: ") else line
        for line in stderr.splitlines(keepends=True)
    )


def _relay_stdout(proc: subprocess.Popen[bytes], echo: bool, rewrite: Callable[[str], str] | None) -> str:
    # Line by line, so `nsa halt --host` shows its progress while it waits.
    assert proc.stdout is not None
    lines = []
    for raw in proc.stdout:
        line = raw.decode("utf-8", errors="replace")
        lines.append(line)
        if echo:
            sys.stdout.write(rewrite(line) if rewrite else line)
            sys.stdout.flush()
    return "".join(lines)


def attach_remote_argv(host: str, remote_dir: str | None, nsa_args: list[str]) -> list[str]:
    """The ssh argv of an interactive `nsa attach` on host, every setting checked (the ssh command, its options, that
    its program runs) without starting it: `nsa attach` says what to fix before it asks for a terminal."""
    check_remote_dir(remote_dir)
    try:
        # its messages reach the terminal straight: the host's nsa words them as from here (errors.on_host)
        said_as = (f"{ON_HOST_ENV}={host}",) + ((f"{ON_REMOTE_DIR_ENV}={remote_dir}",) if remote_dir else ())
        argv = interactive_argv(host, nsa_remote_command(remote_dir, nsa_args, extra=said_as))
        check_ssh_program(argv[0])
    except SSHError as e:
        raise UserError(str(e), SSH_FAILED) from None
    return argv


def attach_remote(host: str, remote_dir: str | None, nsa_args: list[str], argv: list[str]) -> int:
    """Run `argv` (attach_remote_argv's) on this terminal: an interactive `nsa attach` on host (a tty, so tmux can
    draw)."""
    try:
        # ssh's stderr through us, as it comes: its messages are its own (the host's output comes on the terminal),
        # and they tell a session lost from a host never reached
        proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
    except OSError as e:
        raise UserError(ssh_start_failure(argv[0], e), SSH_FAILED) from None
    said = bytearray()
    relay = threading.Thread(target=_relay_stderr, args=(proc, said), daemon=True)
    relay.start()
    try:
        rc = proc.wait()
    except KeyboardInterrupt:  # before ssh made the terminal raw (a password prompt): ssh had it too
        proc.kill()
        proc.wait()
        raise
    relay.join(2.0)  # a child of ssh (a ProxyCommand) may hold the pipe a moment longer: not waited on
    if rc == SSH_ERROR_EXIT:
        stderr = bytes(said).decode("utf-8", errors="replace")
        if session_lost(stderr):
            where = ["--host", host, *(["--remote-dir", remote_dir] if remote_dir else [])]
            again = shlex.join(["nsa", nsa_args[0], *where, *nsa_args[1:]])
            raise _lost(host, stderr, f"the run goes on in its tmux session there; attach again with `{again}`")
        raise UserError(f"cannot reach {host} (ssh failed; its message is above)", SSH_FAILED)
    return rc


STDERR_KEPT = 4096  # the end of ssh's stderr kept to tell why it failed


def _relay_stderr(proc: subprocess.Popen[bytes], said: bytearray) -> None:
    """ssh's stderr to ours (fd 2, where ssh wrote it before), its end kept in ``said``, less its notices (a host key
    added): LogLevel=INFO stays, as ssh says a lost link at INFO."""
    assert proc.stderr is not None
    shown = NoticeFilter()
    with proc.stderr:
        while chunk := proc.stderr.read1(4096):
            said += chunk
            del said[:-STDERR_KEPT]
            _write_all(shown.feed(chunk))
        _write_all(shown.flush())


def _write_all(data: bytes) -> None:
    while data:
        data = data[os.write(2, data) :]
