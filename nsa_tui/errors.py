"""User-facing failures: one message, a nonzero exit, no traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

USAGE_EXIT = 2  # Typer's for a usage mistake: never 1, which `nsa status` uses for a warning verdict


class UserError(Exception):
    """A mistake or a missing precondition the user can fix; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` to stderr and exit (typer.Exit keeps Typer's cleanup)."""
    import typer

    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)
