"""`nsa watch`: the live dashboard. Textual is imported inside the command body only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nsa_tui.commands._options import USAGE_EXIT, RemoteDirOpt, check_remote_dir
from nsa_tui.errors import UserError, fail
from nsa_tui.rundir import check_run_arg

REMOTE_INTERVAL_S = 1.0


def build_models(runs: list[str], host: str | None, poll: bool, interval: float, remote_dir: str | None = None):
    """One RunModel per RUN argument (local directories, or runs on HOST: their paths there are
    found first, in one short ssh call, as every --host command finds them)."""
    from nsa_tui.watch.model import RunModel

    check_remote_dir(host, remote_dir)
    for run in runs:
        check_run_arg(run)  # with --host too: the host's script would read '' as its newest run
    if host:
        from nsa_tui.errors import UNREACHABLE_EXIT
        from nsa_tui.remote.ssh import SSHError, validate_host
        from nsa_tui.runs.remote import locate_remote_runs
        from nsa_tui.tail.remote import RemoteRunSource

        try:
            validate_host(host)
        except SSHError as e:  # exit 3, as status, runs and report say it
            raise UserError(str(e), UNREACHABLE_EXIT) from None
        paths = locate_remote_runs(host, runs, remote_dir)
        return [
            RunModel(
                p.rstrip("/").rsplit("/", 1)[-1],
                RemoteRunSource(host, p, interval=interval, runs_root=root),
                check_liveness=True,
            )
            for p, root in paths
        ]
    from nsa_tui.errors import NOT_FOUND_EXIT
    from nsa_tui.rundir import holds_run, holds_runs, no_run_in, resolve_run, runs_command, runs_root
    from nsa_tui.tail.local import LocalRunSource

    dirs = [resolve_run(r) for r in runs] if runs else [resolve_run(None)]
    # one tab per run: `nsa watch a runs/a` named one run twice
    unique: dict[Path, Path] = {}
    for d in dirs:
        unique.setdefault(d.resolve(), d)
    dirs = list(unique.values())
    for d in dirs:  # a directory of no run (the runs root, checkpoints/, /etc): the dashboard waited forever, "ok"
        if holds_run(d) or has_telemetry_files(d) or is_empty_dir(d):  # empty: a run about to start, watched
            continue
        if holds_runs(d):
            raise UserError(
                f"{d} is not a run: it holds run directories; `{runs_command(d)}` lists them", NOT_FOUND_EXIT
            )
        parent = d.resolve().parent
        inside = f"; its directory {parent} is a run" if holds_run(parent) else ""
        raise UserError(f"{no_run_in(d)}, nor a training log of another format{inside}", NOT_FOUND_EXIT)
    root = (runs_root(),)  # a run renamed while watched is looked for there too, as `nsa status OLD-PATH` does
    return [
        RunModel(d.resolve().name, LocalRunSource(d, force_poll=poll, roots=root), where=str(d), check_liveness=True)
        for d in dirs
    ]


def has_telemetry_files(d: Path) -> bool:
    """A file the readers parse (the previous trainer's *_log.jsonl, a generic CSV or JSONL log) is in ``d``."""
    from nsa_tui.runs.history import source_kind

    try:
        return any(source_kind(p.name) != "ignore" and p.is_file() for p in d.iterdir())
    except OSError:
        return False


def is_empty_dir(d: Path) -> bool:
    try:
        return next(d.iterdir(), None) is None
    except OSError:
        return False


def check_terminal(what: str, way_on: str = "type it in an interactive shell") -> None:
    """A UserError unless stdin and stdout are a terminal: without one the dashboard cannot draw or read keys, and
    Textual then spun a core for as long as it ran (stdin /dev/null, its screen written into a file)."""
    import sys

    if sys.stdin.isatty() and sys.stdout.isatty():
        return
    raise UserError(
        f"{what} needs a terminal (run from a script or a pipe here): {way_on}, or use `nsa status` (--json for "
        "scripts) or `nsa runs`"
    )


def check_watch_options(host: str | None, poll: bool, interval: float | None) -> None:
    """Each of these options is for one kind of run only: say so rather than ignore it."""
    if host is not None and poll:
        raise UserError(
            "--poll is for local runs: with --host the files are read over ssh every --interval seconds", USAGE_EXIT
        )
    if host is None and interval is not None:
        raise UserError(
            "--interval is for --host: local runs are read as the files change (inotify, or --poll)", USAGE_EXIT
        )


def watch(
    runs: list[str], host: str | None = None, poll: bool = False, interval: float = 1.0, remote_dir: str | None = None
) -> None:
    # the settings first (what to fix, said from a script too), then the terminal, before the runs are looked for or
    # ssh starts, as `nsa attach` does: without one no run can be watched, and an unreachable --host took its timeout
    check_remote_dir(host, remote_dir)
    for run in runs:
        check_run_arg(run)
    check_terminal("nsa watch")
    models = build_models(runs, host, poll, interval, remote_dir)
    for m in models:
        m.prefetch()  # the first reads run while Textual is imported (~0.25 s) and the screen is built
    from nsa_tui.watch.app import WatchApp

    remote_runs = [m.source.run_dir for m in models] if host else None  # type: ignore[attr-defined]
    WatchApp(models, host=host, remote_runs=remote_runs, remote_dir=remote_dir).run()


def register(app: typer.Typer) -> None:
    @app.command("watch")
    def watch_command(
        runs: Annotated[
            list[str] | None, typer.Argument(help="Run directories or names (default: the most recent run).")
        ] = None,
        host: Annotated[
            str | None, typer.Option("--host", help="Watch runs on this host over ssh (your ssh config and keys).")
        ] = None,
        poll: Annotated[
            bool, typer.Option("--poll", help="Poll local files instead of using inotify (not with --host).")
        ] = False,
        remote_dir: RemoteDirOpt = None,
        interval: Annotated[
            float | None,
            typer.Option(
                "--interval",
                # \[: the help is Rich markup, where a bare [default: ...] is a tag, and vanishes
                help=f"Seconds between remote reads (--host only). \\[default: {REMOTE_INTERVAL_S}]",
                min=0.2,
            ),
        ] = None,
    ) -> None:
        """Live dashboard of one or more runs: charts, health alerts, events; q quits, ? for keys."""
        try:
            check_watch_options(host, poll, interval)
            watch(runs or [], host, poll, REMOTE_INTERVAL_S if interval is None else interval, remote_dir)
        except UserError as e:
            fail(str(e), e.code)
