"""`nsa report [RUN ...] [--host HOST [--remote-dir DIR]] [--out DIR]`: PNG charts and report.md
(default RUN: the newest run; default DIR: <first run>/report/, or ./<first run's name>-report/ for runs
on a host).
Exit 3 when a RUN does not exist, holds no telemetry, or its host cannot be reached."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nsa_tui.commands._options import HostOpt, RemoteDirOpt, check_remote_dir
from nsa_tui.errors import UserError, fail


def run_report(runs: list[str], out: Path | None, host: str | None, remote_dir: str | None) -> dict[str, Path]:
    """Write the report; {"report": report.md, chart name: PNG} (UserError for a user's mistake)."""
    from nsa_tui.report import build_report, write_report

    check_remote_dir(host, remote_dir)
    if host is None:
        from nsa_tui.rundir import resolve_run

        dirs = [resolve_run(r) for r in (runs or [None])]
        return build_report(dirs, out or dirs[0] / "report")
    from nsa_tui.report.remote import fetch_report_runs

    fetched = fetch_report_runs(host, runs, remote_dir)
    return write_report(fetched, out or Path(f"{fetched[0].name}-report"))


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        runs: Annotated[
            list[str] | None,
            typer.Argument(metavar="[RUN]...", help="Run directories or names, overlaid (default: the newest run)."),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option("--out", help="output directory (default: <run>/report/; with --host: ./<run>-report/)"),
        ] = None,
        host: HostOpt = None,
        remote_dir: RemoteDirOpt = None,
    ) -> None:
        """Charts (loss, lr, tokens/s, memory, gates) and a Markdown post-mortem of one or more runs."""
        try:
            paths = run_report(runs or [], out, host, remote_dir)
        except UserError as e:
            fail(str(e), e.code)
        for name, p in paths.items():
            print(f"{name:<10} {p}")
