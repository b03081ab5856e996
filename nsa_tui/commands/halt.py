"""`nsa halt`: stop a run cleanly after its current step, with a checkpoint."""

from __future__ import annotations

import os
import shlex
import sys
from typing import Annotated, NoReturn

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
            halt_remote(run, wait, host, remote_dir)
        halt_local(run, wait)
    except UserError as e:
        fail(str(e), e.code)


INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports a command ended by ctrl-c


def halt_remote(run: str, wait: float, host: str, remote_dir: str | None) -> NoReturn:
    from nsa_train.telemetry.schema import HALT_FILE
    from nsa_tui.launch.remote import run_nsa

    said: list[str] = []

    def note(line: str) -> str:
        said.append(line)
        return line

    try:
        # '--': a RUN may start with '-'
        code, _ = run_nsa(host, remote_dir, ["halt", "--wait", str(wait), "--", run], rewrite=note)
    except KeyboardInterrupt:
        # the host's `nsa halt` ends with the connection (remote/caller.py); what it did there stays done
        where = ["--host", host, *(["--remote-dir", remote_dir] if remote_dir else [])]
        check = shlex.join(["nsa", "status", *where, *(["--"] if run.startswith("-") else []), run])
        if any(line.startswith("created ") and HALT_FILE in line for line in said):
            what = f"{HALT_FILE} stays on {host}: the run still stops after its current step"
        else:
            what = f"{host} had not said it created {HALT_FILE}: the run may or may not have been asked to stop"
        print(f"interrupted: {what}; check with `{check}`", file=sys.stderr)
        raise typer.Exit(INTERRUPTED_EXIT) from None
    raise typer.Exit(code)


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
