"""`nsa dump`: ask every rank of a run to write its Python stacks (SIGUSR1)."""

from __future__ import annotations

import os

import typer

from nsa_tui.commands._options import HostOpt, RemoteDirOpt, RunArg, check_remote_dir
from nsa_tui.errors import UserError, fail


def dump_command(
    run: RunArg,
    host: HostOpt = None,
    remote_dir: RemoteDirOpt = None,
) -> None:
    """Signal every rank's trainer (SIGUSR1) and print the stack dump files it writes."""
    from nsa_tui.reader_gone import keep_going
    from nsa_tui.rundir import check_run_arg

    keep_going()  # a reader gone (`| head -1`) leaves no rank unsignalled: the exit code says whether all answered
    try:
        check_run_arg(run)  # here too with --host: the host's nsa may predate the check
        check_remote_dir(host, remote_dir)
        if host is not None:
            from nsa_tui.launch.remote import run_nsa
            from nsa_tui.stopped_ranks import resumed_over_ssh

            # '--': a RUN may start with '-'; a stopped rank's `kill -CONT PID` (skipped: ...) is the host's pid
            code, _ = run_nsa(host, remote_dir, ["dump", "--", run], rewrite=lambda line: resumed_over_ssh(line, host))
            raise typer.Exit(code)
        from nsa_tui.launch.dump import dump_stacks
        from nsa_tui.rundir import resolve_run

        dumps = dump_stacks(resolve_run(run), lambda line: print(line, flush=True))
        for path in dumps.files:
            print(os.path.abspath(path))  # over --host a relative path names nothing here
        if dumps.short:  # the files above are kept; the exit status says not every rank answered
            raise UserError(dumps.short)
    except UserError as e:
        fail(str(e), e.code)


def register(app: typer.Typer) -> None:
    app.command("dump")(dump_command)
