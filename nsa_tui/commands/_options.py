"""Options shared by the commands that act on one existing run (halt, dump, attach)."""

from __future__ import annotations

from typing import Annotated

import typer

RunArg = Annotated[str, typer.Argument(help="Run directory or run name.")]
HostOpt = Annotated[
    str | None, typer.Option("--host", help="The run is on this OpenSSH destination (user@host or an alias).")
]
RemoteDirOpt = Annotated[
    str | None,
    typer.Option("--remote-dir", help="With --host: cd here on the host first (where `nsa launch --remote-dir` ran)."),
]
