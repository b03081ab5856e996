"""User-facing failures: one message, a nonzero exit, no traceback."""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Sequence
from typing import NoReturn

# The exit statuses the commands share (README; docs/health.md for nsa status's verdicts, 0 ok, 1 warning, 2 critical,
# and 4 a rules file that cannot be used)
USAGE_EXIT = 2  # Typer's for a usage mistake: never 1, which `nsa status` uses for a warning verdict
NOT_FOUND_EXIT = 3  # nothing to read: no such run, no telemetry in it, no checkpoint
UNREACHABLE_EXIT = 3  # the host cannot be reached: every command, as nsa status says no telemetry
LINK_LOST_EXIT = 1  # the connection to a host was lost once the command ran there: not "nothing ran there" (3)

# Set by `nsa attach --host` for the host's nsa, whose messages reach the terminal without passing through
# ours (a tty): that nsa words them as from HOST (on_host) itself.
ON_HOST_ENV = "NSA_ON_HOST"
ON_REMOTE_DIR_ENV = "NSA_ON_REMOTE_DIR"


class UserError(Exception):
    """A mistake or a missing precondition the user can fix; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` to stderr and exit (typer.Exit keeps Typer's cleanup)."""
    import typer

    say_error(message)
    raise typer.Exit(code)


def fail_with_json(message: str, obj: dict, code: int, indent: int | None = None) -> NoReturn:
    """A --json command's refusal: ``error: message`` on stderr first (a reader of stdout that has gone would end
    the command at the next line), then ``obj`` on stdout for a script to parse, and exit ``code`` whatever that
    reader does (nsa_tui.reader_gone)."""
    import json

    import typer

    from nsa_tui.reader_gone import decided

    say_error(message)
    decided(code)
    print(json.dumps(obj, indent=indent), flush=True)
    raise typer.Exit(code)


def say_error(message: str) -> None:
    """Print ``error: message`` to stderr (as from HOST, on a host's side of `nsa attach --host`)."""
    if host := os.environ.get(ON_HOST_ENV):
        message = on_host(message, host, os.environ.get(ON_REMOTE_DIR_ENV) or None)
    print(f"error: {message}", file=sys.stderr)


_COMMAND_HINT = re.compile(r"`nsa ([a-z]+)( [^`]*)?`")
# a shell word: quoted parts ('...', "...") and escapes kept whole, so a quoted ' -- ' is not the end of options
_SHELL_WORD = re.compile(r"""(?:'[^']*'|"(?:\\.|[^"\\])*"|\\.|[^\s'"\\])+""")


def run_command(verb: str, run: str, where: Sequence[str] = ()) -> str:
    """`nsa VERB [WHERE...] RUN` as a hint to copy (``where``: options such as --host H): the name quoted, after
    `--` when it starts with '-' (else an option)."""
    return shlex.join(["nsa", verb, *where, *(["--"] if run.startswith("-") else []), run])


def on_host(message: str, host: str, remote_dir: str | None) -> str:
    """A host's error as said here: where it comes from (its paths could as well be paths here), and the
    commands it suggests (`nsa status RUN`, `kill -CONT PID`) for that host (run here as written, they looked for RUN
    here, or signalled a pid of this machine)."""
    from nsa_tui.stopped_ranks import resumed_over_ssh

    where = f" --host {shlex.quote(host)}" + (f" --remote-dir {shlex.quote(remote_dir)}" if remote_dir else "")

    def remote_hint(m: re.Match[str]) -> str:
        rest = m.group(2) or ""
        if " --host " in rest:
            return m.group(0)
        # before a `--`, after which they would be RUNs (`nsa status -- -x --host H`: runs `-x`, `--host` and `H` here)
        end = next((w.start() - 1 for w in _SHELL_WORD.finditer(rest) if w.group() == "--"), len(rest))
        return f"`nsa {m.group(1)}{rest[:end]}{where}{rest[end:]}`"

    return f"on {host}: {resumed_over_ssh(_COMMAND_HINT.sub(remote_hint, message), host)}"
