"""`nsa report [RUN ...] [--host HOST [--remote-dir DIR]] [--out DIR]`: PNG charts and report.md
(default RUN: the newest run; default DIR: <run>/report/, or ./<run's name>-report/ for a run on a host;
several runs need --out).
Exit 3 when a RUN does not exist, holds no telemetry, or its host cannot be reached; 4 when a run's monitor
section cannot be used (the report is written all the same, its alerts judged with the default rules)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nsa_tui.commands._options import HostOpt, RemoteDirOpt, check_remote_dir, path_option
from nsa_tui.errors import UserError, fail
from nsa_tui.reader_gone import decided
from nsa_tui.rundir import check_run_arg

if TYPE_CHECKING:
    from nsa_tui.report.load import ReportRun


def run_report(
    runs: list[str], out: Path | None, host: str | None, remote_dir: str | None
) -> tuple[dict[str, Path], list[ReportRun]]:
    """Write the report: ({"report": report.md, chart name: PNG}, the runs it reports) (UserError for a user's
    mistake)."""
    from nsa_tui.report import load_runs, write_report

    check_remote_dir(host, remote_dir)
    for run in runs:
        check_run_arg(run)  # with --host too: the host's script would read '' as its newest run
    if len(runs) > 1 and out is None:
        # the first run's report/ would be overwritten by the comparison (its own report.md said "a, b" after it)
        raise UserError("several runs are reported together into --out DIR: give one (e.g. --out compare/)", 2)
    if host is None:
        from nsa_tui.rundir import resolve_run

        dirs = [resolve_run(r) for r in (runs or [None])]
        loaded = load_runs(dirs)
        return write_report(loaded, out or dirs[0] / "report"), loaded
    from nsa_tui.report.remote import fetch_report_runs

    fetched = fetch_report_runs(host, runs, remote_dir)
    return write_report(fetched, out or Path(f"{fetched[0].name}-report")), fetched


def say_problems(runs: list[ReportRun]) -> int:
    """What report.md's Warnings say that needs acting on, on stderr too: each unreadable file (a warning) and a
    monitor section that cannot be used (an error: exit 4, as `nsa status` gives it). The exit status."""
    from nsa_tui.health import BAD_RULES_EXIT
    from nsa_tui.runs.history import newer_telemetry_line, newer_telemetry_text

    code = 0
    for r in runs:
        for name, why in r.history.unreadable_files.items():
            print(f"warning: {r.where}: {name} unreadable: {why}", file=sys.stderr)
        for name, v in r.history.newer_files.items():
            line = newer_telemetry_line(name, newer_telemetry_text(v), "here")
            print(f"warning: {r.where}: {line}", file=sys.stderr)
        if r.rules_error:
            print(f"error: {r.rules_error}; the report judges it with the default rules", file=sys.stderr)
            code = BAD_RULES_EXIT
    return code


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        runs: Annotated[
            list[str] | None,
            typer.Argument(metavar="[RUN]...", help="Run directories or names, overlaid (default: the newest run)."),
        ] = None,
        out: Annotated[
            str | None,
            typer.Option(
                "--out",
                help="output directory (default: <run>/report/; with --host: ./<run>-report/; several runs: required)",
            ),
        ] = None,
        host: HostOpt = None,
        remote_dir: RemoteDirOpt = None,
    ) -> None:
        """Charts (loss, lr, tokens/s, memory, gates) and a Markdown post-mortem of one or more runs."""
        try:
            paths, reported = run_report(runs or [], path_option(out, "--out"), host, remote_dir)
        except UserError as e:
            fail(str(e), e.code)
        # the problems (stderr) before the paths: the exit code is decided before a reader of stdout can leave
        code = decided(say_problems(reported))
        for name, p in paths.items():
            print(f"{name:<10} {p}")
        raise typer.Exit(code)
