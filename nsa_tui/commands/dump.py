"""`nsa dump`: ask every rank of a run to write its Python stacks (SIGUSR1)."""

from __future__ import annotations

from typing import Annotated

import typer

from nsa_tui.errors import UserError, fail

HOST_HELP = "The run is on this OpenSSH destination (user@host or an alias)."
REMOTE_DIR_HELP = "With --host: cd here on the host first (where `nsa launch --remote-dir` ran)."


def dump_command(
    run: Annotated[str, typer.Argument(help="Run directory or run name.")],
    host: Annotated[str | None, typer.Option("--host", help=HOST_HELP)] = None,
    remote_dir: Annotated[str | None, typer.Option("--remote-dir", help=REMOTE_DIR_HELP)] = None,
) -> None:
    """Signal every rank's trainer (SIGUSR1) and print the stack dump files it writes."""
    try:
        if host is not None:
            from nsa_tui.launch.remote import run_nsa

            code, _ = run_nsa(host, remote_dir, ["dump", run])
            raise typer.Exit(code)
        from nsa_tui.launch.dump import dump_stacks
        from nsa_tui.rundir import resolve_run

        for path in dump_stacks(resolve_run(run), lambda line: print(line, flush=True)):
            print(path)
    except UserError as e:
        fail(str(e), e.code)


def register(app: typer.Typer) -> None:
    app.command("dump")(dump_command)
