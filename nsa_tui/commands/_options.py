"""Options shared by the commands that act on existing runs, here or on --host."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nsa_tui.errors import USAGE_EXIT, UserError

# metavar: the RUN of the docs and of other commands' help, not the parameter's name (Typer showed `{run}`; its
# braces only mark the argument required)
RunArg = Annotated[str, typer.Argument(metavar="RUN", help="Run directory or run name.")]
HostOpt = Annotated[
    str | None, typer.Option("--host", help="The run is on this OpenSSH destination (user@host or an alias).")
]
RemoteDirOpt = Annotated[
    str | None,
    typer.Option("--remote-dir", help="With --host: cd here on the host first (where `nsa launch --remote-dir` ran)."),
]


def check_remote_dir(host: str | None, remote_dir: str | None) -> None:
    """--remote-dir means nothing without --host, and nothing when empty (it would be the login directory): say
    so instead of ignoring it. An empty or malformed --host is a usage mistake too (exit 2): exit 3 would tell a
    script the host could not be reached."""
    if host is not None:
        from nsa_tui.remote.ssh import SSHError, validate_host

        try:
            validate_host(host)
        except SSHError as e:
            raise UserError(str(e), USAGE_EXIT) from None
    if remote_dir is not None and host is None:
        raise UserError("--remote-dir needs --host (it is a directory on that host)", USAGE_EXIT)
    if remote_dir is not None and not remote_dir.strip():
        raise UserError("--remote-dir is empty: give the directory on the host, or leave the option out", USAGE_EXIT)


def path_option(value: str | None, flag: str) -> Path | None:
    """A path option's value; an empty one is a usage mistake, not the current directory (`--out "$DIR"` with DIR
    unset wrote a report into the working directory)."""
    if value is None:
        return None
    if not value.strip():
        raise UserError(f"{flag} is empty: give a path, or leave the option out for the default", USAGE_EXIT)
    return Path(value)
