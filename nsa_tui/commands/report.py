"""`nsa report RUN [RUN ...] [--out DIR]`: PNG charts and report.md (default DIR: <first run>/report/).
Exit 3 when a RUN does not exist or holds no telemetry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nsa_tui.errors import UserError, fail


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        runs: Annotated[list[str], typer.Argument(metavar="RUN...", help="run directories or names (overlaid)")],
        out: Annotated[Path | None, typer.Option("--out", help="output directory (default: <run>/report/)")] = None,
    ) -> None:
        """Charts (loss, lr, tokens/s, memory, gates) and a Markdown post-mortem of one or more runs."""
        from nsa_tui.report import build_report
        from nsa_tui.rundir import resolve_run

        try:
            dirs = [resolve_run(r) for r in runs]
            paths = build_report(dirs, out or dirs[0] / "report")
        except UserError as e:
            fail(str(e), e.code)
        for name, p in paths.items():
            print(f"{name:<10} {p}")
