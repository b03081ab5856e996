"""`nsa attach`: open a run's tmux session in this terminal (Ctrl-b d detaches)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from nsa_tui.commands._options import HostOpt, RemoteDirOpt, RunArg, check_remote_dir
from nsa_tui.errors import UserError, fail, run_command


def attach_command(
    run: RunArg,
    host: HostOpt = None,
    remote_dir: RemoteDirOpt = None,
) -> None:
    """Attach to the run's tmux session `nsa-<name>`."""
    from nsa_tui.rundir import check_run_arg

    try:
        check_run_arg(run)  # here too with --host: the host's nsa may predate the check
        check_remote_dir(host, remote_dir)
        if host is not None:
            from nsa_tui.launch.remote import attach_remote, attach_remote_argv

            nsa_args = ["attach", "--", run]  # '--': a RUN may start with '-'
            # the ssh settings first (what to fix, said from a script too), then the terminal, before ssh starts:
            # ssh -t without one says "Pseudo-terminal will not be allocated" and the host's tmux then fails
            argv = attach_remote_argv(host, remote_dir, nsa_args)
            check_terminal(run, ["--host", host, *(["--remote-dir", remote_dir] if remote_dir else [])])
            raise typer.Exit(attach_remote(host, remote_dir, nsa_args, argv))
        argv, env = attach_argv_for(run)
        if "attach-session" in argv:
            # tmux's own answer is "open terminal failed: not a terminal", with the session name nowhere
            check_terminal(run)
    except UserError as e:
        fail(str(e), e.code)
    os.execve(argv[0], argv, env)


def check_terminal(run: str, where: Sequence[str] = ()) -> None:
    """A UserError naming `nsa watch`/`nsa status` (with ``where``: --host and --remote-dir) unless stdin and stdout
    are a terminal, which an attach needs to draw in."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        return
    watch, status = (run_command(verb, run, where) for verb in ("watch", "status"))
    raise UserError(
        "nsa attach needs a terminal (run from a script or a pipe here): type it in an interactive shell, "
        f"or follow the run with `{watch}` or `{status}`"
    )


def attach_argv_for(run: str) -> tuple[list[str], dict[str, str]]:
    from nsa_tui.fmt import exit_status_said
    from nsa_tui.launch import runstate, tmux
    from nsa_tui.rundir import holds_run, no_run_error, resolve_run, run_name

    run_dir = resolve_run(run)
    launch = runstate.read_launch_json(run_dir) or {}
    if launch and not runstate.launched_here(run_dir, launch):
        # a `cp -r` copy of a run: its launch.json names the original's session, which attached to the original
        original = str(launch.get("run_dir"))
        raise UserError(
            f"{run_dir} is a copy of the run in {original} (its launch.json was written there) and has no tmux session "
            f"of its own; that run's is `{run_command('attach', original)}`"
        )
    session = launch.get("tmux_session") or tmux.session_name(run_name(run_dir))
    socket = tmux.recorded_socket(launch)  # null recorded: the default server, not $NSA_TMUX_SOCKET's
    if not tmux.has_session(session, socket):
        if not holds_run(run_dir):  # no run's session to miss (a typo, the runs root): as `nsa halt` says it
            raise no_run_error(run_dir, "attach")
        status = runstate.read_exit_status(run_dir)
        ended = f": it exited with status {exit_status_said(status)}" if status is not None else ""
        see = run_command("status", run)
        raise UserError(f"no tmux session {session} for run {run_name(run_dir)!r}{ended}; see `{see}`")
    return tmux.attach_argv(session, socket)


def register(app: typer.Typer) -> None:
    app.command("attach")(attach_command)
