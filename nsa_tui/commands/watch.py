"""`nsa watch`: the live dashboard. Textual is imported inside the command body only."""

from __future__ import annotations

from typing import Annotated

import typer

from nsa_tui.errors import UserError, fail


def build_models(runs: list[str], host: str | None, poll: bool, interval: float):
    """One RunModel per RUN argument (local directories, or paths on HOST)."""
    from nsa_tui.watch.model import RunModel

    if host:
        from nsa_tui.remote.ssh import SSHError, validate_host
        from nsa_tui.rundir import runs_root
        from nsa_tui.tail.remote import RemoteRunSource

        try:
            validate_host(host)
        except SSHError as e:
            raise UserError(str(e), 2) from None
        if not runs:
            raise UserError("with --host, name the run: nsa watch --host HOST RUN (a directory on HOST)", 2)
        models = []
        for r in runs:
            path = r if "/" in r else str(runs_root() / r)
            models.append(RunModel(r.rstrip("/").rsplit("/", 1)[-1], RemoteRunSource(host, path, interval=interval)))
        return models
    from nsa_tui.rundir import resolve_run
    from nsa_tui.tail.local import LocalRunSource

    dirs = [resolve_run(r) for r in runs] if runs else [resolve_run(None)]
    return [RunModel(d.resolve().name, LocalRunSource(d, force_poll=poll), where=str(d), check_tmux=True) for d in dirs]


def watch(runs: list[str], host: str | None = None, poll: bool = False, interval: float = 1.0) -> None:
    models = build_models(runs, host, poll, interval)
    for m in models:
        m.prefetch()  # the first reads run while Textual is imported (~0.25 s) and the screen is built
    from nsa_tui.watch.app import WatchApp

    WatchApp(models, host=host, remote_runs=runs or None).run()


def register(app: typer.Typer) -> None:
    @app.command("watch")
    def watch_command(
        runs: Annotated[
            list[str] | None, typer.Argument(help="Run directories or names (default: the most recent run).")
        ] = None,
        host: Annotated[
            str | None, typer.Option("--host", help="Watch runs on this host over ssh (your ssh config and keys).")
        ] = None,
        poll: Annotated[bool, typer.Option("--poll", help="Poll files instead of using inotify.")] = False,
        interval: Annotated[
            float, typer.Option("--interval", help="Seconds between remote reads (--host only).", min=0.2)
        ] = 1.0,
    ) -> None:
        """Live dashboard of one or more runs: charts, health alerts, events; q quits, ? for keys."""
        try:
            watch(runs or [], host, poll, interval)
        except UserError as e:
            fail(str(e), e.code)
