"""`nsa status`'s exit codes, as a monitoring plugin's (Nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), and 4 for a
rules file it cannot use: whatever keeps it from a verdict (a name two runs share, a bad --host, a usage mistake,
click's own included) is UNKNOWN, never 2, which a script gating on the code pages someone about as a crashed run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperCommand

from nsa_tui.errors import NOT_FOUND_EXIT, fail
from nsa_tui.option_words import given_options

UNKNOWN_EXIT = NOT_FOUND_EXIT  # 3: no verdict (no telemetry, no run, no host, or a mistake in how it was asked)
BAD_RULES_EXIT = 4  # as nsa_tui.health.rules says (not imported: `nsa --help` would load the health engine)


def no_verdict_exit(code: int) -> int:
    """The exit code of an error that left `nsa status` without a verdict: 4 for rules it cannot use, else 3."""
    return BAD_RULES_EXIT if code == BAD_RULES_EXIT else UNKNOWN_EXIT


def error_line(run: str | None, error: str | None, exit_code: int) -> dict[str, Any]:
    """The --json line of a run without a verdict (``run`` None: the whole command failed), with the judge_version a
    verdict has: a host whose nsa answers with errors only still says which engine it is (older_judge)."""
    from nsa_tui.health.engine import JUDGE_VERSION

    return {"run": run, "error": error, "exit_code": exit_code, "judge_version": JUDGE_VERSION}


def wants_json(cmd: Any, args: Sequence[str]) -> bool:
    """``--json`` among the options ``args`` give ``cmd``, as click reads them: not after a ``--`` (a RUN), nor as the
    value of another option (`--host --json`: a host named --json)."""
    return any(given.name == "--json" for given in given_options(cmd, args))


def _click_exception() -> type[Exception]:
    """The ClickException of the click Typer runs on: its own vendored copy in newer Typers, click itself before."""
    vendored = getattr(typer.core, "_click", None)
    if vendored is not None:
        return vendored.ClickException
    import click

    return click.ClickException


class StatusCommand(TyperCommand):
    """The `status` command, whose usage mistakes exit 3 (UNKNOWN) with click's usual message, and under --json an
    error line on stdout; other commands keep click's 2."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        given = list(args)  # click consumes ``args``
        try:
            return super().parse_args(ctx, args)
        except _click_exception() as e:
            e.exit_code = UNKNOWN_EXIT  # type: ignore[attr-defined]
            if wants_json(self, given):
                print(json.dumps(error_line(None, e.format_message(), UNKNOWN_EXIT)), flush=True)  # type: ignore[attr-defined]
            raise

    def refuse_usage(self, message: str, args: Sequence[str]) -> NoReturn:
        """A usage mistake found before click parses (an option given twice): its one line, exit 3."""
        if wants_json(self, args):
            print(json.dumps(error_line(None, message, UNKNOWN_EXIT)), flush=True)
        fail(message, UNKNOWN_EXIT)
