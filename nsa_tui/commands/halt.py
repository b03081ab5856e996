"""`nsa halt`: stop a run cleanly after its current step, with a checkpoint."""

from __future__ import annotations

import os
import shlex
import sys
from typing import Annotated, NoReturn

import typer

from nsa_tui.commands._options import HostOpt, RemoteDirOpt, RunArg, check_remote_dir
from nsa_tui.errors import USAGE_EXIT, UserError, fail, run_command
from nsa_tui.reader_gone import keep_going


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

    keep_going()  # a reader gone (`| head -1`) ends no wait: the exit code is the halt's
    try:
        check_run_arg(run)  # here too with --host: the host's nsa may predate the check
        check_remote_dir(host, remote_dir)
        if host is not None:
            halt_remote(run, wait, host, remote_dir)
        halt_local(run, wait)
    except UserError as e:
        fail(str(e), e.code)


INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports a command ended by ctrl-c
# Beyond its --wait and ssh's ConnectTimeout, what the host's `nsa halt` may take: its start (a login shell, Python's
# imports on a busy host), a tmux that does not answer a liveness check (tmux.TMUX_TIMEOUT_S, 30 s) and, after the end
# record, the launcher's exit status (halt.py: up to 5 s past the wait). A host's nsa stopped or stuck longer (its sshd
# still answers ssh's keepalives) would otherwise be waited on without end.
HOST_GRACE_ENV = "NSA_HALT_HOST_GRACE"
DEFAULT_HOST_GRACE_S = 60.0


def host_grace_s() -> float:
    """$NSA_HALT_HOST_GRACE (seconds, default 60)."""
    value = os.environ.get(HOST_GRACE_ENV, "").strip()
    if not value:
        return DEFAULT_HOST_GRACE_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 1e9:  # also NaN
        raise UserError(f"{HOST_GRACE_ENV}={value!r}: expected a number of seconds >= 0, e.g. 60", USAGE_EXIT)
    return seconds


def halt_remote(run: str, wait: float, host: str, remote_dir: str | None) -> NoReturn:
    from nsa_train.telemetry.schema import HALT_FILE
    from nsa_tui.launch.halt import secs
    from nsa_tui.launch.remote import SSH_FAILED, LinkLost, NoAnswer, run_nsa
    from nsa_tui.remote.ssh import SSHError, connect_timeout_s

    said: list[str] = []

    def note(line: str) -> str:
        said.append(line)
        return line

    def known() -> str:
        """What the host's nsa halt had done, as far as it said, and how to see the rest."""
        where = ["--host", host, *(["--remote-dir", remote_dir] if remote_dir else [])]
        check = shlex.join(["nsa", "status", *where, *(["--"] if run.startswith("-") else []), run])
        if any(line.startswith("created ") and HALT_FILE in line for line in said):
            what = f"{HALT_FILE} stays on {host}: the run still stops after its current step"
        else:
            what = f"{host} had not said it created {HALT_FILE}: the run may or may not have been asked to stop"
        return f"{what}; check with `{check}`"

    try:
        overhead = connect_timeout_s() + host_grace_s()
    except SSHError as e:
        raise UserError(str(e), SSH_FAILED) from None
    try:
        # '--': a RUN may start with '-'
        argv = ["halt", "--wait", str(wait), "--", run]
        code, _ = run_nsa(host, remote_dir, argv, rewrite=note, timeout_s=wait + overhead)
    except KeyboardInterrupt:
        # the host's `nsa halt` ends with the connection (remote/caller.py); what it did there stays done
        print(f"interrupted: {known()}", file=sys.stderr)
        raise typer.Exit(INTERRUPTED_EXIT) from None
    except NoAnswer:
        # ended here; the host's nsa ends too once it runs again (the connection is gone: remote/caller.py)
        raise UserError(
            f"nsa halt on {host} did not end within {secs(wait + overhead)} (its --wait {secs(wait)}, and "
            f"{secs(overhead)} to connect and start there): it is stopped or stuck; {known()}"
        ) from None
    except LinkLost as e:  # what the host's nsa halt had done there stays done, as when interrupted
        said = f"lost the connection to {host} while nsa halt ran there ({e.reason}): {known()}"
        raise UserError(said, e.code) from None
    raise typer.Exit(code)


def halt_local(run: str, wait: float) -> None:
    from nsa_train.telemetry.schema import LAUNCH_JSON
    from nsa_tui.fmt import exit_status_said
    from nsa_tui.health.stop_signal import halted_by_text, not_the_halt_text
    from nsa_tui.launch.halt import ALREADY_ENDED, CLEAN_REASONS, halt_run
    from nsa_tui.rundir import resolve_run, run_name

    run_dir = resolve_run(run)
    name = run_name(run_dir)  # `nsa halt .` in the run: '.' has no name
    outcome = halt_run(run_dir, wait, lambda line: print(line, flush=True))
    if outcome is None:
        return
    if outcome.already_ended:
        print(ALREADY_ENDED.format(name=name, reason=outcome.reason, step=outcome.step))
        if outcome.stop_signal:  # which signal, as `nsa status` says it: a killed tmux server's SIGHUP is no halt
            print(halted_by_text(outcome.stop_signal, halt_requested=outcome.halt_overtaken))
    else:
        print(f"stopped at step {outcome.step} (reason {outcome.reason})")
        if outcome.stop_signal:  # the halt was asked, but a signal (a killed tmux server's SIGHUP) came first
            print(not_the_halt_text(outcome.stop_signal))
    # absolute: over --host a path relative to the host's login directory means nothing here
    print(f"checkpoint: {os.path.abspath(outcome.checkpoint) if outcome.checkpoint else 'none found'}")
    if outcome.exit_status is not None:
        print(f"exit status: {exit_status_said(outcome.exit_status)}")  # 138 alone left the reader guessing
    elif not (run_dir / LAUNCH_JSON).is_file():
        print("exit status: none (only a run started by `nsa launch` has an exit_status file)")
    elif not outcome.already_ended:
        print("exit status: not yet written (torchrun is still shutting down)")
    if outcome.reason not in CLEAN_REASONS:
        see = run_command("status", run)
        raise UserError(f"the run ended with reason {outcome.reason!r}, not a clean halt; see `{see}`")


def register(app: typer.Typer) -> None:
    app.command("halt")(halt_command)
