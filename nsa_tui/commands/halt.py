"""`nsa halt`: stop a run cleanly after its current step, with a checkpoint."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from nsa_tui.commands._options import HostOpt, RemoteDirOpt, RunArg, check_remote_dir
from nsa_tui.errors import UserError, fail


def halt_command(
    run: RunArg,
    wait: Annotated[
        float, typer.Option("--wait", min=0.0, help="Seconds to wait for the end record (0: do not wait).")
    ] = 600.0,
    host: HostOpt = None,
    remote_dir: RemoteDirOpt = None,
) -> None:
    """Create .HALT, wait for the `end` record and report the checkpoint."""
    from nsa_tui.rundir import check_run_arg

    try:
        check_run_arg(run)  # here too with --host: the host's nsa may predate the check
        check_remote_dir(host, remote_dir)
        if host is not None:
            from nsa_tui.launch.remote import run_nsa

            # '--': a RUN may start with '-'
            code, _ = run_nsa(host, remote_dir, ["halt", "--wait", str(wait), "--", run])
            raise typer.Exit(code)
        halt_local(run, wait)
    except UserError as e:
        fail(str(e), e.code)


def halt_local(run: str, wait: float) -> None:
    from nsa_train.telemetry.schema import LAUNCH_JSON
    from nsa_tui.launch.halt import ALREADY_ENDED, CLEAN_REASONS, halt_run
    from nsa_tui.rundir import resolve_run, run_name

    run_dir = resolve_run(run)
    name = run_name(run_dir)  # `nsa halt .` in the run: '.' has no name
    outcome = halt_run(run_dir, wait, lambda line: print(line, flush=True))
    if outcome is None:
        return
    if outcome.already_ended:
        print(ALREADY_ENDED.format(name=name, reason=outcome.reason, step=outcome.step))
    else:
        print(f"stopped at step {outcome.step} (reason {outcome.reason})")
    # absolute: over --host a path relative to the host's login directory means nothing here
    print(f"checkpoint: {os.path.abspath(outcome.checkpoint) if outcome.checkpoint else 'none found'}")
    if outcome.exit_status is not None:
        print(f"exit status: {outcome.exit_status}")
    elif not (run_dir / LAUNCH_JSON).is_file():
        print("exit status: none (only a run started by `nsa launch` has an exit_status file)")
    elif not outcome.already_ended:
        print("exit status: not yet written (torchrun is still shutting down)")
    if outcome.reason not in CLEAN_REASONS:
        raise UserError(f"the run ended with reason {outcome.reason!r}, not a clean halt; see `nsa status {run}`")


def register(app: typer.Typer) -> None:
    app.command("halt")(halt_command)
