"""Run commands on a training host over the user's own OpenSSH.

We never reimplement SSH: the user's ``ssh`` (their ~/.ssh/config, agent, keys and
host-key policy) does the work. ``NSA_SSH_COMMAND`` replaces the ssh command the way
GIT_SSH_COMMAND does for git (tests point it at a loopback sshd with a throwaway key).

Quoting: OpenSSH joins its arguments with spaces and hands the result to the remote
login shell, so every remote argument goes through :func:`shlex.quote` here, once.
A run name such as ``x; rm -rf ~`` or ``$(id)`` stays a literal string.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass

CONNECT_TIMEOUT_ENV = "NSA_SSH_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT_S = 10
# Keepalives: without them a frozen host or a link that drops packets left every command that waits on the host
# (`nsa halt --host` sends nothing while it waits) hanging for hours, as TCP sends nothing to notice it by. ssh asks
# the host's sshd (which answers at once, however busy the training) after 15 s of silence, and gives up (exit 255)
# after 4 unanswered asks (about 75 s in all): a longer silence is a lost link, a shorter one (a Wi-Fi roam) survives.
ALIVE_INTERVAL_ENV = "NSA_SSH_ALIVE_INTERVAL"
DEFAULT_ALIVE_INTERVAL_S = 15
ALIVE_COUNT_MAX = 4
SSH_ERROR_EXIT = 255  # ssh's own failures (connection, auth, host key) exit 255


class SSHError(Exception):
    """The host could not be reached or refused us; the message is one line for the user."""


@dataclass(frozen=True)
class RemoteResult:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


def validate_host(host: str) -> str:
    """An OpenSSH destination; a leading '-' would be read by ssh as an option."""
    if not host or host.startswith("-") or any(c.isspace() for c in host):
        raise SSHError(f"invalid host {host!r}: expected an OpenSSH destination such as user@host or an alias")
    return host


def connect_timeout_s() -> int:
    """$NSA_SSH_CONNECT_TIMEOUT (whole seconds, default 10); read when ssh is used, so a bad value is one
    SSHError there rather than an import error in every command."""
    seconds = _whole_seconds(CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT_S)
    if seconds < 1:  # 0 would mean ssh's own default
        value = os.environ[CONNECT_TIMEOUT_ENV]
        raise SSHError(f"{CONNECT_TIMEOUT_ENV}={value!r}: expected a whole number of seconds >= 1, e.g. 10")
    return seconds


def alive_interval_s() -> int:
    """$NSA_SSH_ALIVE_INTERVAL (whole seconds, default 15; 0: none of ours, the ssh config decides)."""
    return _whole_seconds(ALIVE_INTERVAL_ENV, DEFAULT_ALIVE_INTERVAL_S, "(e.g. 15), or 0 for ssh's own setting")


def _whole_seconds(env: str, default: int, example: str = "") -> int:
    """A variable's whole number of seconds (0 included: the caller decides), ``default`` when unset or blank. ssh
    takes whole seconds: 2.5 was cut to 2 without a word."""
    value = os.environ.get(env, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not (0 <= seconds < 1e9 and seconds == int(seconds)):  # also NaN
        more = f" {example}" if example else ", e.g. 10"
        raise SSHError(f"{env}={value!r}: expected a whole number of seconds >= 1{more}")
    return int(seconds)


def _keepalive_options(base: list[str]) -> list[str]:
    """ServerAlive options, each unless the user's NSA_SSH_COMMAND sets it (in any of ssh's spellings)."""
    interval = alive_interval_s()
    if interval == 0:
        return []
    theirs = " ".join(base).lower()
    opts = []
    if "serveraliveinterval" not in theirs:
        opts += ["-o", f"ServerAliveInterval={interval}"]
    if "serveralivecountmax" not in theirs:
        opts += ["-o", f"ServerAliveCountMax={ALIVE_COUNT_MAX}"]
    return opts


# ssh's options that take an argument (OpenSSH 9): in a cluster such as `-qp22` the rest is that argument
_WITH_ARGUMENT = frozenset("BbcDEeFIiJLlmOoPpQRSWw")


def _log_level_options(base: list[str]) -> list[str]:
    """LogLevel=INFO (ssh's default) unless the user's NSA_SSH_COMMAND sets a level (-o LogLevel=..., -q, -v). What
    ssh says of a lost link ("Timeout, server HOST not responding.", "Connection to HOST closed by remote host.") is
    logged at INFO, which a config file's `LogLevel ERROR` or `QUIET` keeps back: ssh then exits 255 saying nothing,
    and session_lost took a link lost mid-command for a host never reached. A command-line -o wins over the file."""
    args = iter(base[1:])
    for arg in args:
        if not arg.startswith("-") or arg.startswith("--") or arg == "-":
            continue
        for i, ch in enumerate(arg[1:], start=1):
            if ch in "qv":
                return []
            if ch in _WITH_ARGUMENT:  # the rest of the cluster, else the next word, is its argument
                value = arg[i + 1 :] or next(args, "")
                # -o's "Key=value" or "Key value": only the key says it (a -F path may hold the word)
                if ch == "o" and re.split(r"[=\s]", value.strip(), maxsplit=1)[0].lower() == "loglevel":
                    return []
                break
    return ["-o", "LogLevel=INFO"]


def ssh_base_command(*, batch: bool = True, tty: bool = False) -> list[str]:
    """The ssh argv prefix (without destination): NSA_SSH_COMMAND or plain ``ssh``."""
    command = os.environ.get("NSA_SSH_COMMAND", "").strip()
    try:
        base = shlex.split(command or "ssh")
    except ValueError as e:  # e.g. an unclosed quote
        raise SSHError(f"NSA_SSH_COMMAND={command!r} is not a valid command line ({e})") from None
    if not base:
        raise SSHError(f"NSA_SSH_COMMAND={command!r} names no command")
    opts = ["-o", f"ConnectTimeout={connect_timeout_s()}", *_keepalive_options(base), *_log_level_options(base)]
    if batch:
        # Never hang on a password or host-key prompt: a script must get an answer.
        opts += ["-o", "BatchMode=yes"]
    opts += ["-t"] if tty else ["-T"]
    return base + opts


def remote_command(argv: list[str]) -> str:
    """The one string the remote shell will parse: every argument quoted."""
    return shlex.join(argv)


def remote_script(script: str, args: list[str], env: list[str] | None = None) -> str:
    """Run a POSIX sh script remotely with ``args`` as $1, $2, ... (never interpolated), under
    ``env`` (``K=V`` items, through env(1): sshd drops the client's variables)."""
    argv = ["sh", "-c", script, "sh", *args]
    return remote_command(["env", *env, *argv] if env else argv)


# ssh's INFO line for a host key it added to known_hosts (StrictHostKeyChecking accept-new or no; with
# UserKnownHostsFile /dev/null, at every connection): no news, which a config's `LogLevel ERROR` kept back before the
# tools passed LogLevel=INFO, and no reason for a failure
_KNOWN_HOST_ADDED = re.compile(r"^Warning: Permanently added .* to the list of known hosts\.\r?(\n|$)", re.MULTILINE)


def without_notices(stderr: str) -> str:
    """ssh's stderr without the lines it logs at INFO that say nothing to the user (a host key added)."""
    return _KNOWN_HOST_ADDED.sub("", stderr)


_NOTICE_START = b"Warning: Permanently added "


class NoticeFilter:
    """ssh's stderr as it comes, less its notices (without_notices), for a relay to a terminal: only a line that may
    still become a notice is held back, so a prompt or a message without its newline yet is shown at once."""

    def __init__(self) -> None:
        self._held = b""  # the start of a line that may be a notice
        self._in_line = False  # the line under way was shown in part: its rest is shown as it comes

    def feed(self, chunk: bytes) -> bytes:
        """What of ``chunk`` (and any bytes held before it) to show now."""
        data, self._held, shown = self._held + chunk, b"", bytearray()
        while data:
            end = data.find(b"\n") + 1
            if self._in_line:
                shown += data[:end] if end else data
                self._in_line, data = not end, data[end:] if end else b""
            elif end:
                line, data = data[:end], data[end:]
                if not _KNOWN_HOST_ADDED.fullmatch(line.decode("utf-8", errors="replace")):
                    shown += line
            elif data.startswith(_NOTICE_START) or _NOTICE_START.startswith(data):
                self._held, data = data, b""
            else:
                shown += data
                self._in_line, data = True, b""
        return bytes(shown)

    def flush(self) -> bytes:
        """At the end of the stream: what was held (a line that ended before it could be told a notice)."""
        held, self._held = self._held, b""
        return held


def describe_ssh_failure(host: str, stderr: str) -> str:
    """Turn ssh's stderr into one line that says what to fix."""
    err = without_notices(stderr).strip()
    low = err.lower()
    if "connection refused" in low:
        why = "connection refused (is sshd running, is the port right?)"
    elif "permission denied" in low:
        why = "authentication failed (check your key, agent or user name)"
    elif "host key verification failed" in low or "no matching host key" in low:
        why = "host key verification failed (unknown or changed host key; check ~/.ssh/known_hosts)"
    elif "could not resolve hostname" in low or "name or service not known" in low:
        why = "unknown host name"
    elif "timed out" in low:
        why = f"connection timed out after {connect_timeout_s()}s"
    elif "no route to host" in low or "network is unreachable" in low:
        why = "host unreachable"
    else:
        last = err.splitlines()[-1] if err else "ssh failed"
        why = last
    return f"cannot reach {host}: {why}"


def keepalive_lost(stderr: str) -> bool:
    """ssh gave up on a connected host that stopped answering its keepalives ("Timeout, server HOST not
    responding."): the link was lost after the session began, not a host that could not be reached."""
    return "not responding" in stderr.lower()


_CLOSED_BY_HOST = re.compile(r"connection to \S+ closed by remote host", re.IGNORECASE)
# ssh's session loop failing to write ("client_loop: send disconnect: Broken pipe"): a killed sshd met by a keepalive
_SESSION_LOOP_FAILED = re.compile(r"^client_loop: ", re.MULTILINE)


def session_lost(stderr: str) -> bool:
    """ssh lost a session that was up: its keepalives went unanswered, or the host ended it ("Connection to HOST
    closed by remote host.", or the session loop's "client_loop: send disconnect: Broken pipe": a reboot, a killed
    sshd). Not "Connection closed by remote host" alone, which a host that refuses us before the session says too."""
    return (
        keepalive_lost(stderr)
        or _CLOSED_BY_HOST.search(stderr) is not None
        or _SESSION_LOOP_FAILED.search(stderr) is not None
    )


def no_answer_message(host: str, what: str, result: RemoteResult) -> str:
    """One line for a remote script that did not run to its end (``what``: e.g. "read the runs"); the last
    line of the remote stderr says why, e.g. a csh login shell that cannot parse it."""
    lines = without_notices(result.stderr.decode("utf-8", errors="replace")).strip().splitlines()
    why = lines[-1].strip() if lines else "nothing on stderr"
    return f"could not {what} on {host}: no answer from its shell (exit status {result.returncode}: {why})"


def no_answer_in_time(host: str, timeout: float) -> str:
    """One line for a remote command that had not ended when ``timeout`` ran out. ssh gives up by itself on a host
    that does not connect and send its banner within ConnectTimeout (an exit 255: describe_ssh_failure), so when
    that is the shorter limit the host was reached, and is only slow to answer: its login shell's rc files (run
    before our command), or a busy machine or disk."""
    connect_s = connect_timeout_s()
    if connect_s < timeout:
        return (
            f"no answer from {host} within {timeout:.0f}s after connecting "
            "(a slow login shell, e.g. its rc files, or a busy host)"
        )
    return f"no answer from {host} within {timeout:.0f}s (not connected yet, a slow login shell, or a busy host)"


def ssh_start_failure(program: str, error: OSError) -> str:
    """One line for an ssh command that could not be started at all (missing, not executable, ...)."""
    if isinstance(error, FileNotFoundError):
        return f"ssh command not found: {program!r} (install OpenSSH or fix NSA_SSH_COMMAND)"
    return f"cannot run the ssh command {program!r}: {error.strerror or error} (fix NSA_SSH_COMMAND)"


def check_ssh_program(program: str) -> None:
    """Raise the SSHError that starting ``program`` would (not found, not executable: ssh_start_failure's line),
    without starting it."""
    if shutil.which(program) is not None:
        return
    if os.sep in program and os.path.exists(program):  # Popen searches PATH only for a bare name
        raise SSHError(ssh_start_failure(program, PermissionError(errno.EACCES, os.strerror(errno.EACCES))))
    raise SSHError(ssh_start_failure(program, FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))))


def run_remote(
    host: str,
    command: str,
    *,
    input: bytes | None = None,
    timeout: float | None = 60.0,
) -> RemoteResult:
    """Run one remote command string (build it with remote_command/remote_script).

    Raises SSHError for ssh's own failures (exit 255), with one clear line. The
    remote command's own exit status is returned, not raised.
    """
    validate_host(host)
    argv = [*ssh_base_command(), host, command]
    try:
        proc = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except OSError as e:
        raise SSHError(ssh_start_failure(argv[0], e)) from None
    except subprocess.TimeoutExpired:
        raise SSHError(no_answer_in_time(host, timeout or 0.0)) from None
    if proc.returncode == SSH_ERROR_EXIT:
        raise SSHError(describe_ssh_failure(host, proc.stderr.decode("utf-8", errors="replace")))
    return RemoteResult(proc.returncode, proc.stdout, proc.stderr)


def interactive_argv(host: str, command: str) -> list[str]:
    """argv for an interactive session (e.g. tmux attach): a tty, prompts allowed."""
    validate_host(host)
    return [*ssh_base_command(batch=False, tty=True), host, command]


def popen_remote(host: str, command: str) -> subprocess.Popen[bytes]:
    """A long-lived ssh process (streaming reads for `nsa watch`); stdin/stdout are pipes."""
    validate_host(host)
    argv = [*ssh_base_command(), host, command]
    try:
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        raise SSHError(ssh_start_failure(argv[0], e)) from None
