"""The `nsa` command. Thin: each command lives in nsa_tui/commands/<name>.py and
registers itself; heavy imports (textual, torch) happen inside the command bodies,
so `nsa status` starts fast and never imports torch."""

from __future__ import annotations

import typer

from nsa_tui.commands import attach, check, dump, halt, launch, report, runs, sample, status, watch

app = typer.Typer(
    name="nsa",
    help="Launch, watch and judge Native Sparse Attention training runs, locally or over SSH.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (launch, watch, status, runs, halt, dump, attach, check, sample, report):
    _module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
