"""The `nsa` command. Thin: each command lives in nsa_tui/commands/<name>.py and
registers itself; heavy imports (textual, torch) happen inside the command bodies,
so `nsa status` starts fast and never imports torch."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from nsa_tui.commands import attach, check, dump, halt, launch, report, runs, sample, status, watch
from nsa_tui.errors import USAGE_EXIT, fail
from nsa_tui.option_words import given_options
from nsa_tui.reader_gone import ReaderGoneHelp, decided, exit_reader_gone, flush_output


def repeated_option(cmd: Any, args: list[str]) -> str | None:
    """Why ``args`` give a one-value option (``--config``, ``--name``, ...) twice with different values, else None:
    click keeps the last without a word, and a run went on with the other config than the one the user looked at."""
    seen: dict[str, list[str]] = {}
    for given in given_options(cmd, args):
        if given.value is not None and not given.option.multiple:
            seen.setdefault(given.name, []).append(given.value)
    for opt, values in seen.items():
        if len(set(values)) > 1:
            return f"{opt} given {len(values)} times ({', '.join(values)}): only one would be used; give it once"
    return None


class OneValueGroup(ReaderGoneHelp, TyperGroup):
    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[Any, ...]:
        name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None and (why := repeated_option(cmd, rest)) is not None:
            if (refuse := getattr(cmd, "refuse_usage", None)) is not None:  # `nsa status`: exit 3, its UNKNOWN
                refuse(why, rest)
            fail(why, USAGE_EXIT)
        return name, cmd, rest

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help:  # `nsa` alone: help in place of a usage, exit 2, whoever reads it
            decided(USAGE_EXIT)
        try:
            return super().parse_args(ctx, args)
        except BrokenPipeError:  # click's echo of `nsa --help` (without rich), before Typer's handling exits 1
            exit_reader_gone()

    def invoke(self, ctx: Any) -> Any:
        # here, before Typer's own handling, which exits 1 (a warning, to `nsa status`) when a reader stops reading
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            exit_reader_gone()


app = typer.Typer(
    cls=OneValueGroup,
    name="nsa",
    help="Launch, watch and judge Native Sparse Attention training runs, locally or over SSH.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (launch, watch, status, runs, halt, dump, attach, check, sample, report):
    _module.register(app)
for _info in app.registered_commands:  # each command's help too (`nsa status --help | head -1`): exit 0
    _cls = _info.cls or TyperCommand
    _info.cls = type(_cls.__name__, (ReaderGoneHelp, _cls), {})


def main() -> None:
    from nsa_tui.remote.caller import end_with_stdin

    end_with_stdin()  # a `--host` command's host side: end with the caller's connection
    try:
        app()
    except BrokenPipeError:  # met in Typer's own handling (its usage error box to a closed stderr)
        exit_reader_gone()
    finally:
        flush_output()  # a closed pipe met now keeps the exit code; at interpreter shutdown it would be 120


if __name__ == "__main__":
    main()
